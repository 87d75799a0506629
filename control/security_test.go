package control

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// counterValue is the value of the counter name with the label reason.
func counterValue(t *testing.T, g prometheus.Gatherer, name, reason string) float64 {
	t.Helper()
	return labelled(t, g, name, "reason", reason)
}

// labelled is the value of the counter name with label set to value.
func labelled(t *testing.T, g prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{%s=%q}", name, label, value)
	return 0
}

// wantSecurityEvent checks that the last security line logged is the one
// described, and that the counter of its reason went up by one.
func wantSecurityEvent(t *testing.T, logs *logLines, g prometheus.Gatherer, before map[string]float64, actor, action, reason string) {
	t.Helper()
	events := logs.matching(t, "security")
	if len(events) == 0 {
		t.Fatalf("no security event logged, want %s by %s", reason, actor)
	}
	e := events[len(events)-1]
	if e["level"] != "WARN" || e["actor"] != actor || e["action"] != action || e["reason"] != reason || e["remote_addr"] != "127.0.0.1" {
		t.Errorf("security event %v, want actor %s, action %s, reason %s from 127.0.0.1", e, actor, action, reason)
	}
	if got := counterValue(t, g, "strangler_admin_denied_total", reason); got != before[reason]+1 {
		t.Errorf("strangler_admin_denied_total{reason=%q} = %v, want %v", reason, got, before[reason]+1)
	}
}

func deniedCounts(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, r := range denyReasons() {
		out[string(r)] = counterValue(t, g, "strangler_admin_denied_total", string(r))
	}
	return out
}

// TestRefusedAdminCallsAreSecurityEvents: each refused call of the admin
// API is one "security" log line naming who (or unknown), from where,
// the endpoint (never its path with parameters) and why, and counts in
// strangler_admin_denied_total; no token ever appears in the log.
func TestRefusedAdminCallsAreSecurityEvents(t *testing.T) {
	p := newPlane(t)
	const guess = "guess-token-0123456789"
	flip := `{"mode":"modern","reason":"go"}`
	for _, tc := range []struct {
		name, method, path, token, body string
		header                          []string
		status                          int
		actor, action, reason           string
	}{
		{"no token", "GET", "/admin/routes/get-patient", "", "", nil, 401, "unknown", "GET /admin/routes/{name}", "missing_token"},
		{"a wrong token", "GET", "/admin/routes", guess, "", nil, 401, "unknown", "GET /admin/routes", "invalid_token"},
		{"a token in the query string", "GET", "/admin/audit?access_token=" + aliceToken, "", "", nil, 400, "unknown", "GET /admin/audit", "token_in_query"},
		{"a viewer's flip", "PATCH", "/admin/routes/get-patient", veraToken, flip, []string{"If-Match", `"0"`}, 403, "vera", "PATCH /admin/routes/{name}", "role"},
		{"an operator's discard", "DELETE", "/admin/repairs/w-9", bobToken, `{"reason":"x"}`, nil, 403, "bob", "DELETE /admin/repairs/{id}", "role"},
		{"a change from another site", "PATCH", "/admin/routes/get-patient", aliceToken, flip, []string{"If-Match", `"0"`, "Origin", "https://evil.example"}, 403, "alice", "PATCH /admin/routes/{name}", "cross_origin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := deniedCounts(t, p.reg)
			if resp, body := p.call(t, tc.method, tc.path, tc.token, tc.body, tc.header...); resp.StatusCode != tc.status {
				t.Fatalf("got %d %v, want %d", resp.StatusCode, body, tc.status)
			}
			wantSecurityEvent(t, p.logs, p.reg, before, tc.actor, tc.action, tc.reason)
		})
	}
	t.Run("a lockout is logged once, when it begins, and counted each time", func(t *testing.T) {
		before := deniedCounts(t, p.reg)
		for range maxFailures - 1 { // one wrong token above already
			p.call(t, "GET", "/admin/routes", guess, "")
		}
		wantSecurityEvent(t, p.logs, p.reg, before, "unknown", "GET /admin/routes", "locked_out")
		if e := p.logs.matching(t, "security"); e[len(e)-1]["scope"] != "address" {
			t.Errorf("the lockout's line %v lacks scope address", e[len(e)-1])
		}
		if got := labelled(t, p.reg, "strangler_admin_lockouts_total", "scope", "address"); got != 1 {
			t.Errorf("strangler_admin_lockouts_total{scope=address} = %v, want 1", got)
		}
		if resp, _ := p.call(t, "GET", "/admin/routes", aliceToken, ""); resp.StatusCode != http.StatusOK {
			t.Errorf("alice's token from the locked address: got %d, want 200", resp.StatusCode)
		}
		if resp, _ := p.call(t, "GET", "/admin/routes", guess, ""); resp.StatusCode != http.StatusTooManyRequests {
			t.Errorf("a guess right after: got %d, want 429", resp.StatusCode)
		}
		if got := counterValue(t, p.reg, "strangler_admin_denied_total", "locked_out"); got != before["locked_out"]+2 {
			t.Errorf("locked_out counted %v times, want %v", got-before["locked_out"], 2)
		}
		if n := len(p.logs.matching(t, "security")); n != 6+maxFailures {
			t.Errorf("%d security lines, want %d: one per refusal above, the lockout once", n, 6+maxFailures)
		}
	})
	for _, secret := range []string{aliceToken, bobToken, veraToken, guess} {
		if strings.Contains(p.logs.text(), secret) {
			t.Errorf("the log holds the token %q", secret)
		}
	}
}

// TestCrossSiteRequestsWithoutATokenLockNobodyOut: another site can make
// an operator's browser send requests without a token here; they are
// refused but do not count as failed attempts, so they cannot lock the
// operator's address out.
func TestCrossSiteRequestsWithoutATokenLockNobodyOut(t *testing.T) {
	p := newPlane(t)
	for range maxFailures + 1 {
		resp, _ := p.call(t, "GET", "/admin/routes", "", "", "Sec-Fetch-Site", "cross-site")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("a cross-site request without a token: got %d, want 401", resp.StatusCode)
		}
	}
	if resp, _ := p.call(t, "GET", "/admin/routes", aliceToken, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("then alice's own request: got %d, want 200", resp.StatusCode)
	}
}

// TestRefusedStatusPageUseIsASecurityEvent: the login form and the flip
// and logout forms log and count their refusals like the API.
func TestRefusedStatusPageUseIsASecurityEvent(t *testing.T) {
	h := newPageAdmin(t)
	step := func(name, actor, action, reason string, send func() *http.Response, status int) {
		t.Run(name, func(t *testing.T) {
			before := deniedCounts(t, h.reg)
			if resp := send(); resp.StatusCode != status {
				t.Fatalf("got %d, want %d", resp.StatusCode, status)
			}
			wantSecurityEvent(t, h.logs, h.reg, before, actor, action, reason)
		})
	}
	post := func(path string, form url.Values, header ...string) func() *http.Response {
		return func() *http.Response {
			resp, _ := h.send(t, "POST", path, form, header...)
			return resp
		}
	}
	step("a login with a wrong token", "unknown", "POST /login", "invalid_token",
		post("/login", url.Values{"token": {"guess-token-0123456789"}}, "Origin", h.URL), 401)
	step("a login from another site", "unknown", "POST /login", "cross_origin",
		post("/login", url.Values{"token": {pageToken}}, "Sec-Fetch-Site", "cross-site"), 403)
	step("a flip without a session", "unknown", "POST /ui/routes/{name}", "no_session",
		post("/ui/routes/get-patient", flipForm("x", "0", "modern", "go"), "Origin", h.URL), 403)
	h.login(t, pageViewerToken)
	_, csrf := h.page(t)
	step("a flip with a wrong form token", "audit-vera", "POST /ui/routes/{name}", "form_token",
		post("/ui/routes/get-patient", flipForm("wrong", "0", "modern", "go"), "Origin", h.URL), 403)
	step("a viewer's flip", "audit-vera", "POST /ui/routes/{name}", "role",
		post("/ui/routes/get-patient", flipForm(csrf, "0", "modern", "go"), "Origin", h.URL), 403)
	step("a logout with a wrong form token", "audit-vera", "POST /logout", "form_token",
		post("/logout", url.Values{"csrf": {"wrong"}}, "Origin", h.URL), 403)
	for _, secret := range []string{pageToken, pageViewerToken, "guess-token-0123456789"} {
		if strings.Contains(h.logs.text(), secret) {
			t.Errorf("the log holds the token %q", secret)
		}
	}
}

// TestAnExpiredTokensSessionEnds: a status page session opened with a
// token ends when the token expires, and the token no longer logs in.
func TestAnExpiredTokensSessionEnds(t *testing.T) {
	h := newPageAdmin(t)
	h.login(t, pageViewerToken) // audit-vera's token works through 2026-11-02
	for range 5 {               // used every 6 hours, so it never idles out
		h.clock.Advance(6 * time.Hour)
		h.page(t)
	}
	h.clock.Advance(6 * time.Hour) // 2026-11-03 06:30
	_, body := h.send(t, "GET", "/", nil)
	if !strings.Contains(body, sessionEnded) || strings.Contains(body, `id="routes"`) {
		t.Errorf("after the token expired the page shows:\n%s\nwant the login form saying the session ended", body)
	}
	resp, body := h.send(t, "POST", "/login", url.Values{"token": {pageViewerToken}}, "Origin", h.URL)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "That admin token expired on 2026-11-02") {
		t.Errorf("logging in with it: got %d, want 401 saying it expired", resp.StatusCode)
	}
	if events := h.logs.matching(t, "security"); len(events) != 2 || events[0]["reason"] != "expired_token" || events[1]["reason"] != "expired_token" {
		t.Errorf("security events %v, want two expired_token", events)
	}
}
