package control

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/config"
	"strangler/domain"
	"strangler/store"
)

// innerActions are the entries of permissions decided inside an endpoint
// rather than by its pattern.
var innerActions = []string{actionRepairBody}

// TestEveryAdminEndpointHasARoleDecision walks the admin listener's
// endpoints: each has a decision in the one permissions table, and the
// table decides nothing that is not an endpoint or an action inside one.
func TestEveryAdminEndpointHasARoleDecision(t *testing.T) {
	p := newPlane(t)
	perms := permissions()
	for _, pattern := range p.admin.patterns {
		if _, ok := perms[pattern]; !ok {
			t.Errorf("%s has no role decision: add it to permissions (roles.go)", pattern)
		}
	}
	for action := range perms {
		if !slices.Contains(p.admin.patterns, action) && !slices.Contains(innerActions, action) {
			t.Errorf("permissions decides %q, which is no endpoint and no action inside one", action)
		}
	}
}

// apiCall is a request that exercises one admin API endpoint or action.
type apiCall struct {
	method, path, body string
	header             []string
}

// apiCalls has a request for every endpoint and action of the admin API
// that needs a role, by its entry in permissions. The status page's are
// in TestEachRoleAgainstTheStatusPage.
func apiCalls() map[string]apiCall {
	flip := `{"mode":"modern","percent":10,"reason":"role test","force":true}`
	return map[string]apiCall{
		"GET /admin/routes":                     {"GET", "/admin/routes", "", nil},
		"GET /admin/routes/{name}":              {"GET", "/admin/routes/get-patient", "", nil},
		"GET /admin/routes/{name}/report":       {"GET", "/admin/routes/get-patient/report", "", nil},
		"GET /admin/routes/{name}/schema":       {"GET", "/admin/routes/get-patient/schema", "", nil},
		"GET /admin/report":                     {"GET", "/admin/report", "", nil},
		"GET /admin/audit":                      {"GET", "/admin/audit", "", nil},
		"GET /admin/diffs":                      {"GET", "/admin/diffs", "", nil},
		"GET /admin/repairs":                    {"GET", "/admin/repairs", "", nil},
		"GET /admin/repairs/{id}":               {"GET", "/admin/repairs/w-1", "", nil},
		actionRepairBody:                        {"GET", "/admin/repairs/w-1?body=1", "", nil},
		"PATCH /admin/routes/{name}":            {"PATCH", "/admin/routes/get-patient", flip, []string{"If-Match", `"0"`}},
		"POST /admin/routes/{name}/force-token": {"POST", "/admin/routes/get-patient/force-token", `{"backend":"modern"}`, nil},
		"POST /admin/repairs/{id}/retry":        {"POST", "/admin/repairs/w-1/retry", `{"reason":"role test"}`, nil},
		"POST /admin/repairs/{id}/stop":         {"POST", "/admin/repairs/w-1/stop", `{"reason":"role test"}`, nil},
		"DELETE /admin/repairs/{id}":            {"DELETE", "/admin/repairs/w-1", `{"reason":"role test"}`, nil},
		"POST /admin/repairs/retry":             {"POST", "/admin/repairs/retry", `{"route":"put-item","state":"dead","reason":"role test"}`, nil},
		"POST /admin/repairs/discard":           {"POST", "/admin/repairs/discard", `{"route":"put-item","state":"dead","reason":"role test"}`, nil},
		"GET /admin/changes":                    {"GET", "/admin/changes?state=all", "", nil},
		"GET /admin/changes/{change}":           {"GET", "/admin/changes/1", "", nil},
		"POST /admin/changes/{change}/approve":  {"POST", "/admin/changes/1/approve", `{"reason":"role test"}`, nil},
		"POST /admin/changes/{change}/reject":   {"POST", "/admin/changes/1/reject", `{"reason":"role test"}`, nil},
	}
}

// journalWrite puts a write the primary accepted into the repair queue.
func (p *plane) journalWrite(t *testing.T, id string) {
	t.Helper()
	ctx := context.Background()
	in := domain.Intent{ID: id, Route: "create-patient", Resource: "/patients", Method: "POST", Target: "/patients",
		Primary: "legacy", Body: []byte(`{"name":"Ada"}`)}
	if err := p.store.BeginWrite(ctx, in, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := p.store.RecordOutcome(ctx, id, domain.Outcome{Status: 201}); err != nil {
		t.Fatal(err)
	}
}

// TestEachRoleAgainstEveryAdminCall: viewer, operator and admin call
// every admin API endpoint and action. A role below the one needed gets
// 403 naming it, and the refusal is audited under the token's name; a
// role at or above it is let through (whatever the call then answers).
func TestEachRoleAgainstEveryAdminCall(t *testing.T) {
	p := newPlane(t)
	p.journalWrite(t, "w-1")
	p.pendingChange(t, "temp") // change request 1, for the approve and reject calls
	calls := apiCalls()
	perms := permissions()
	for _, pattern := range append(slices.Clone(p.admin.patterns), innerActions...) {
		if perms[pattern] == anyone || strings.HasPrefix(pattern, "POST /ui/") || pattern == "POST /logout" || pattern == "GET /{$}" {
			continue
		}
		if _, ok := calls[pattern]; !ok {
			t.Errorf("%s has no call in apiCalls: add one, so that each role is tried against it", pattern)
		}
	}
	roles := []struct {
		actor, token string
		role         config.Role
	}{{"vera", veraToken, config.RoleViewer}, {"bob", bobToken, config.RoleOperator}, {"alice", aliceToken, config.RoleAdmin}}
	for action, call := range calls {
		need := perms[action]
		for _, r := range roles {
			allowed := r.role.Allows(need)
			verdict := "is let through"
			if !allowed {
				verdict = "is refused"
			}
			t.Run(action+" by "+string(r.role)+" "+verdict, func(t *testing.T) {
				before := len(p.auditActions(t))
				resp, body := p.call(t, call.method, call.path, r.token, call.body, call.header...)
				if allowed {
					if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized {
						t.Errorf("got %d %v, want the %s role let through", resp.StatusCode, body, r.role)
					}
					return
				}
				wantMsg := action + " needs the " + string(need) + " role; the token \"" + r.actor + "\" has the " + string(r.role) + " role"
				if msg, _ := body["error"].(string); resp.StatusCode != http.StatusForbidden || msg != wantMsg || body["needs_role"] != string(need) {
					t.Errorf("got %d %v, want 403 saying %q with needs_role %s", resp.StatusCode, body, wantMsg, need)
				}
				entries, err := p.store.AuditLog(context.Background(), store.AuditFilter{})
				if err != nil {
					t.Fatal(err)
				}
				if len(entries) != before+1 || entries[0].Action != "denied" || entries[0].Actor != r.actor || !strings.Contains(entries[0].Detail, wantMsg) {
					t.Errorf("audit log %+v, want a new denied entry by %s saying %q", entries[0], r.actor, wantMsg)
				}
			})
		}
	}
}

// TestARoleRefusalIsAuditedWhateverItNames: a valid token reaching above
// its role is audited even for a route that does not exist, under the
// endpoint's pattern rather than the name it made up.
func TestARoleRefusalIsAuditedWhateverItNames(t *testing.T) {
	p := newPlane(t)
	resp, _ := p.call(t, "PATCH", "/admin/routes/made-up-<b>", veraToken, `{"mode":"modern","reason":"x"}`, "If-Match", `"0"`)
	entries, err := p.store.AuditLog(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusForbidden || len(entries) != 1 || entries[0].Actor != "vera" || entries[0].Route != "" ||
		!strings.HasPrefix(entries[0].Detail, "PATCH /admin/routes/{name} refused (403)") || strings.Contains(entries[0].Detail, "made-up") {
		t.Errorf("got %d, audit %+v; want 403 audited as vera's refused PATCH /admin/routes/{name}, without the made-up name", resp.StatusCode, entries)
	}
}

// TestAViewerAskingForARepairBodyIsRefusedAndAudited: the body of a
// journaled write may be patient data: a viewer sees the repair, not the
// body; the attempt is audited on the repair's route. An admin reads it,
// audited as a read.
func TestAViewerAskingForARepairBodyIsRefusedAndAudited(t *testing.T) {
	p := newPlane(t)
	p.journalWrite(t, "w-1")
	if resp, body := p.call(t, "GET", "/admin/repairs/w-1", veraToken, ""); resp.StatusCode != http.StatusOK || body["body"] != nil {
		t.Fatalf("the repair without its body: got %d %v, want 200 without a body", resp.StatusCode, body)
	}
	resp, body := p.call(t, "GET", "/admin/repairs/w-1?body=1", veraToken, "")
	if resp.StatusCode != http.StatusForbidden || body["needs_role"] != "admin" || body["body"] != nil || body["target"] != nil {
		t.Fatalf("got %d %v, want 403 needing admin, and no body", resp.StatusCode, body)
	}
	if got, want := p.auditActions(t), []string{"vera denied create-patient"}; !slices.Equal(got, want) {
		t.Errorf("audit log %q, want %q", got, want)
	}
	resp, body = p.call(t, "GET", "/admin/repairs/w-1?body=1", aliceToken, "")
	if resp.StatusCode != http.StatusOK || body["body"] != `{"name":"Ada"}` {
		t.Fatalf("an admin: got %d %v, want 200 with the body", resp.StatusCode, body)
	}
	if got := p.auditActions(t); got[0] != "alice repair_read create-patient" {
		t.Errorf("audit log %q, want alice's read of create-patient's write first", got)
	}
	// An auditor asking who read that route's journaled bodies lists the
	// route's entries: the read was among them only by its id.
	_, listed := p.call(t, "GET", "/admin/audit?route=create-patient", veraToken, "")
	entries, _ := listed["entries"].([]any)
	var actions []string
	for _, e := range entries {
		e, _ := e.(map[string]any)
		actions = append(actions, fmt.Sprint(e["actor"], " ", e["action"]))
	}
	if want := []string{"alice repair_read", "vera denied"}; !slices.Equal(actions, want) {
		t.Errorf("GET /admin/audit?route=create-patient lists %q, want %q", actions, want)
	}
}

// TestAnExpiredTokenIsRefused: a token works through its expires day
// (UTC); 7 days before, /readyz and the log say it expires; after it,
// the API, the login form and its open sessions refuse it, as security
// events, and /readyz says it expired, still answering 200.
func TestAnExpiredTokenIsRefused(t *testing.T) {
	p := newPlane(t)
	ctx, cancel := context.WithCancel(context.Background())
	warned := make(chan error, 1)
	go func() { warned <- p.admin.Tokens.WarnExpiring(ctx, p.log, p.clock.Now) }()
	t.Cleanup(func() {
		cancel()
		<-warned
	})

	if resp, body := p.call(t, "GET", "/admin/routes", tempToken, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("before it expires: got %d %v, want 200", resp.StatusCode, body)
	}
	code, ready := p.get(t, "/readyz")
	if want := `warning: an admin token expires at the end of 2026-11-03 (UTC), in 2d12h; renew it (the log names it)`; code != http.StatusOK || !strings.HasPrefix(ready, "ready\n") || !strings.Contains(ready, want) {
		t.Errorf("/readyz: got %d %q, want 200 ready with %q", code, ready, want)
	}
	if strings.Contains(ready, "temp") {
		t.Errorf("/readyz, which needs no token, names the account: %q", ready)
	}
	waitFor(t, func() bool { return len(p.logs.matching(t, "admin token expires soon; renew it")) == 1 }, "the log to warn that temp expires")
	if line := p.logs.matching(t, "admin token expires soon; renew it")[0]; line["token_name"] != "temp" || line["expires"] != "2026-11-03" {
		t.Errorf("warning %v, want token_name temp, expires 2026-11-03", line)
	}

	p.clock.Advance(2*24*time.Hour + 11*time.Hour + 59*time.Minute) // 2026-11-03 23:59
	if resp, _ := p.call(t, "GET", "/admin/routes", tempToken, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("on its last day: got %d, want 200", resp.StatusCode)
	}
	p.clock.Advance(time.Minute) // 2026-11-04 00:00 UTC
	resp, body := p.call(t, "GET", "/admin/routes", tempToken, "")
	if want := `the admin token "temp" expired on 2026-11-03; ask for a new one`; resp.StatusCode != http.StatusUnauthorized || body["error"] != want {
		t.Errorf("the day after: got %d %v, want 401 saying %q", resp.StatusCode, body, want)
	}
	resp, _ = p.call(t, "PATCH", "/admin/routes/get-patient", tempToken, `{"mode":"legacy","reason":"x"}`, "If-Match", `"0"`)
	if got := p.auditActions(t); resp.StatusCode != http.StatusUnauthorized || len(got) != 1 || got[0] != "temp denied get-patient" {
		t.Errorf("a change with it: got %d, audit %q; want 401 audited as temp denied", resp.StatusCode, got)
	}
	if _, ready := p.get(t, "/readyz"); !strings.Contains(ready, `warning: an admin token expired on 2026-11-03 and is refused (the log names it)`) {
		t.Errorf("/readyz: got %q, want it to say temp expired", ready)
	}
	events := p.logs.matching(t, "security")
	if len(events) != 2 || events[0]["actor"] != "temp" || events[0]["reason"] != "expired_token" || events[0]["action"] != "GET /admin/routes" {
		t.Errorf("security events %v, want two expired_token by temp, the first on GET /admin/routes", events)
	}
	if got := counterValue(t, p.reg, "strangler_admin_denied_total", "expired_token"); got != 2 {
		t.Errorf("strangler_admin_denied_total{reason=expired_token} = %v, want 2", got)
	}
}

// get fetches path from the admin listener without a token.
func (p *plane) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := p.Client().Get(p.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// waitFor polls cond until it holds, for at most 10 seconds.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEachRoleAgainstTheStatusPage: every role sees the status page and
// may log out; only a role that may flip sees the flip forms, and a flip
// form posted by a viewer anyway is refused with 403 naming the role it
// needs, and audited.
func TestEachRoleAgainstTheStatusPage(t *testing.T) {
	for _, tc := range []struct {
		token, actor string
		role         config.Role
	}{
		{pageViewerToken, "audit-vera", config.RoleViewer},
		{pageOtherToken, "dev-bob", config.RoleOperator},
		{pageToken, "ops-alice", config.RoleAdmin},
	} {
		canFlip := tc.role.Allows(permissions()[actionFlipForm])
		t.Run(string(tc.role), func(t *testing.T) {
			h := newPageAdmin(t)
			h.login(t, tc.token)
			page, csrf := h.page(t)
			if got := strings.Contains(page, `action="/ui/routes/get-patient"`); got != canFlip {
				t.Errorf("the page shows a flip form: %v, want %v", got, canFlip)
			}
			if got := strings.Contains(page, `id="read-only"`); got == canFlip {
				t.Errorf("the page says it is read-only: %v, want %v", got, !canFlip)
			}
			resp, body := h.send(t, "POST", "/ui/routes/get-patient", flipForm(csrf, "0", "legacy", "role test"), "Origin", h.URL)
			entries := h.auditEntries(t)
			switch {
			case canFlip && (resp.StatusCode != http.StatusSeeOther || len(entries) != 1 || entries[0].Action != "flip"):
				t.Errorf("a flip: got %d, audit %+v; want 303 and the flip audited", resp.StatusCode, entries)
			case !canFlip:
				want := `POST /ui/routes/{name} needs the operator role; the token &#34;` + tc.actor + `&#34; has the viewer role`
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, want) {
					t.Errorf("a flip: got %d, want 403 saying %q\n%s", resp.StatusCode, want, body)
				}
				if len(entries) != 1 || entries[0].Action != "denied" || entries[0].Actor != tc.actor || entries[0].Route != "get-patient" {
					t.Errorf("audit log %+v, want one denied entry by %s on get-patient", entries, tc.actor)
				}
				if rf, _ := h.flags.Get("get-patient"); rf.Override != nil {
					t.Errorf("the refused form flipped get-patient to %s", rf.Mode)
				}
			}
			if resp, _ := h.send(t, "POST", "/logout", url.Values{"csrf": {csrf}}, "Origin", h.URL); resp.StatusCode != http.StatusSeeOther {
				t.Errorf("logout: got %d, want 303", resp.StatusCode)
			}
		})
	}
}

// TestOpenEndpointsNeedNoToken: health, readiness, metrics and the way in
// answer without a token.
func TestOpenEndpointsNeedNoToken(t *testing.T) {
	p := newPlane(t)
	for pattern, need := range permissions() {
		if need != anyone {
			continue
		}
		method, path, _ := strings.Cut(pattern, " ")
		path = strings.NewReplacer("{$}", "", "/static/", "/static/style.css").Replace(path)
		req, err := http.NewRequest(method, p.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if method == "POST" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusNotFound || resp.StatusCode >= 500 {
			t.Errorf("%s without a token: got %d, want it answered", pattern, resp.StatusCode)
		}
	}
}

// TestTheRoleTableIsTheDocumentedOne pins permissions to the README's
// roles table, written out here: the other role tests read what each call
// needs from permissions itself, so a decision lowered there (an
// operator retrying repairs, a viewer flipping routes) passed them all.
func TestTheRoleTableIsTheDocumentedOne(t *testing.T) {
	viewer, operator, admin := config.RoleViewer, config.RoleOperator, config.RoleAdmin
	want := map[string]config.Role{
		"GET /metrics": anyone, "GET /healthz": anyone, "GET /readyz": anyone,
		"GET /static/": anyone, "GET /login": anyone, "POST /login": anyone,

		"GET /{$}": viewer, "POST /logout": viewer,
		"GET /admin/routes": viewer, "GET /admin/routes/{name}": viewer,
		"GET /admin/routes/{name}/report": viewer, "GET /admin/routes/{name}/schema": viewer,
		"GET /admin/report": viewer, "GET /admin/audit": viewer, "GET /admin/diffs": viewer,
		"GET /admin/repairs": viewer, "GET /admin/repairs/{id}": viewer,
		"GET /admin/changes": viewer, "GET /admin/changes/{change}": viewer,

		"PATCH /admin/routes/{name}":            operator,
		"POST /admin/changes/{change}/approve":  operator,
		"POST /admin/changes/{change}/reject":   operator,
		"POST /ui/routes/{name}":                operator,
		"POST /ui/routes/{name}/ramp":           operator,
		"POST /ui/changes/{change}":             operator,
		"POST /admin/routes/{name}/force-token": operator,
		"GET /admin/repairs/{id}?body=1":        admin,
		"POST /admin/repairs/{id}/retry":        admin,
		"POST /admin/repairs/{id}/stop":         admin,
		"DELETE /admin/repairs/{id}":            admin,
		"POST /admin/repairs/retry":             admin,
		"POST /admin/repairs/discard":           admin,
	}
	got := permissions()
	for action, need := range want {
		if have, ok := got[action]; !ok || have != need {
			t.Errorf("%s needs %q, want %q as the README's roles table says", action, have, need)
		}
	}
	for action, have := range got {
		if _, ok := want[action]; !ok {
			t.Errorf("%s (role %q) is not in the README's roles table: document it, and add it here", action, have)
		}
	}
}

// TestAnActionWithoutARoleDecisionIsRefusedToEveryone: an endpoint added
// without an entry in permissions is refused to every role, the admin's
// included, rather than taken as one that needs no token.
func TestAnActionWithoutARoleDecisionIsRefusedToEveryone(t *testing.T) {
	p := newPlane(t)
	for _, actor := range []string{"vera", "bob", "alice", ""} {
		if p.admin.may(actor, "POST /admin/routes/{name}/undecided") {
			t.Errorf("the token %q may take an action without a role decision", actor)
		}
	}
}
