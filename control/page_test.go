package control

import (
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config"
	"strangler/config/configfile"
	"strangler/domain"
	"strangler/stats"
	"strangler/store"
)

const (
	pageToken       = "page-ops-token-0123456789"
	pageOtherToken  = "page-dev-token-9876543210"
	pageViewerToken = "page-viewer-token-0123456789"
)

// pageAdmin is the admin listener built from real parts (flags over a
// SQLite store, reports, live counters) with a browser-like client: a
// cookie jar, redirects not followed.
type pageAdmin struct {
	*httptest.Server
	client *http.Client
	store  *store.Store
	flags  *Flags
	tokens *Tokens
	reg    *prometheus.Registry
	// rollouts drives the ramps and change requests when a test asks.
	rollouts *Rollouts
	logs     *logLines

	clock *clock

	mu      sync.Mutex
	applied []*config.Config
}

func (h *pageAdmin) appliedCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.applied)
}

// plainSessionCookie is the session cookie's name over plain HTTP, as
// these tests reach the page.
var plainSessionCookie = domain.AdminCookieName(sessionCookie, false)

func newPageAdmin(t *testing.T) *pageAdmin {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return newPageAdminOn(t, st, &clock{t: time.Date(2026, 11, 1, 12, 30, 0, 0, time.UTC)})
}

// newPageAdminOn is newPageAdmin over the store st, on clock c: several
// share a store as replicas do.
func newPageAdminOn(t *testing.T, st *store.Store, c *clock) *pageAdmin {
	t.Helper()
	return newPageAdminWith(t, st, c, nil)
}

// newPageAdminWith is newPageAdminOn with writes telling whether the
// store takes the dual-write journal's writes (nil: not known).
func newPageAdminWith(t *testing.T, st *store.Store, c *clock, writes WriteHealth) *pageAdmin {
	t.Helper()
	cfg, err := configfile.Parse("page.yaml", []byte(`
admin:
  tokens:
    - { name: ops-alice, token: "`+pageToken+`", role: admin }
    - { name: dev-bob, token: "`+pageOtherToken+`", role: operator }
    - { name: audit-vera, token: "`+pageViewerToken+`", role: viewer, expires: 2026-11-02 }
backends:
  legacy: { url: "http://legacy.internal" }
  modern: { url: "http://modern.internal" }
routes:
  - name: get-patient
    match: "GET /patients/{id}"
    mode: fallback
    gates: { max_fallback_rate: 1% }
  - name: list-photos
    match: "GET /patients/{id}/photos"
    mode: legacy
`), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	h := &pageAdmin{store: st, clock: c, reg: prometheus.NewRegistry(), logs: &logLines{}}
	now := h.clock.Now
	log := slog.New(slog.NewJSONHandler(h.logs, nil))
	reports := &Reports{Counts: st}
	h.flags, err = NewFlags(context.Background(), cfg, st, nil, reports, applyFunc(func(c *config.Config) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.applied = append(h.applied, c)
		return nil
	}), log, now)
	if err != nil {
		t.Fatal(err)
	}
	h.tokens = &Tokens{}
	h.tokens.Set(cfg.Admin.AdminTokens())
	h.rollouts = NewRollouts(h.flags, st, st, h.tokens, log, now)
	h.Server = httptest.NewServer(NewAdmin(AdminDeps{
		Rollouts: h.rollouts, Gatherer: h.reg, Registerer: h.reg, Readiness: &Readiness{}, Flags: h.flags, Tokens: h.tokens,
		Reports: reports, Audit: st, Repairs: st, Sessions: st, Live: stats.NewCounters(), Log: log, Now: now, Writes: writes,
	}))
	t.Cleanup(h.Close)
	jar, _ := cookiejar.New(nil)
	h.client = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return h
}

// appliedMode is the mode the router was last given for route.
func (h *pageAdmin) appliedMode(t *testing.T, route string) domain.Mode {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.applied[len(h.applied)-1].Routes {
		if r.Name == route {
			return r.Mode
		}
	}
	t.Fatalf("route %s was not applied", route)
	return ""
}

// send makes a request as the browser would: header pairs follow.
func (h *pageAdmin) send(t *testing.T, method, path string, form url.Values, header ...string) (*http.Response, string) {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, h.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := h.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (h *pageAdmin) login(t *testing.T, token string) {
	t.Helper()
	resp, body := h.send(t, "POST", "/login", url.Values{"token": {token}}, "Origin", h.URL)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("login: got %d to %q, want 303 to /\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
}

// page loads the status page and returns its body and form token.
func (h *pageAdmin) page(t *testing.T) (string, string) {
	t.Helper()
	resp, body := h.send(t, "GET", "/", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: got %d, want 200\n%s", resp.StatusCode, body)
	}
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the status page has no form token:\n%s", body)
	}
	return body, m[1]
}

func (h *pageAdmin) auditEntries(t *testing.T) []domain.AuditEntry {
	t.Helper()
	entries, err := h.store.AuditLog(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func flipForm(csrf, version, mode, reason string) url.Values {
	return url.Values{
		"csrf": {csrf}, "version": {version}, "mode": {mode}, "percent": {""},
		"reason": {reason}, "confirm": {"yes"}, "action": {"flip"},
	}
}

func checkPageHeaders(t *testing.T, resp *http.Response) {
	t.Helper()
	for k, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
	} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s %s: %s is %q, want %q", resp.Request.Method, resp.Request.URL.Path, k, got, want)
		}
	}
}

func TestStatusPageWithoutASessionShowsTheLoginForm(t *testing.T) {
	h := newPageAdmin(t)
	resp, body := h.send(t, "GET", "/", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got %d, want 200", resp.StatusCode)
	}
	checkPageHeaders(t, resp)
	for _, want := range []string{`<label for="token">Admin token</label>`, `id="token" name="token"`, `action="/login"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the login page lacks %s", want)
		}
	}
	if strings.Contains(body, "get-patient") {
		t.Error("the login page shows routes")
	}
	resp, body = h.send(t, "GET", "/static/style.css", nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") || !strings.Contains(body, ".flip") {
		t.Errorf("GET /static/style.css: got %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	checkPageHeaders(t, resp)
	if resp, _ := h.send(t, "GET", "/static/", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /static/: got %d, want 404 (no listing)", resp.StatusCode)
	}
}

func TestStatusPageLoginRefusesWrongTokensAndLimitsThem(t *testing.T) {
	h := newPageAdmin(t)
	for i := range maxFailures {
		resp, body := h.send(t, "POST", "/login", url.Values{"token": {"guess-" + string(rune('a'+i))}})
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "not a valid admin token") {
			t.Fatalf("wrong token %d: got %d, want 401 saying so", i+1, resp.StatusCode)
		}
		if len(resp.Cookies()) != 0 {
			t.Fatalf("wrong token %d set a cookie", i+1)
		}
	}
	if resp, _ := h.send(t, "POST", "/login", url.Values{"token": {"guess-z"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the first guess after the lockout: got %d, want 401 (compared)", resp.StatusCode)
	}
	resp, body := h.send(t, "POST", "/login", url.Values{"token": {pageToken}})
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many failed attempts") || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a login right after a rationed check: got %d, want 429 with Retry-After", resp.StatusCode)
	}
	checkPageHeaders(t, resp)
	if len(resp.Cookies()) != 0 {
		t.Fatal("a refused login set a cookie")
	}
	h.clock.Advance(lockedCheckEvery)
	h.login(t, pageToken) // locked out, but the right token gets in once compared
}

func TestStatusPageLoginSetsAStrictHttpOnlyCookie(t *testing.T) {
	h := newPageAdmin(t)
	resp, _ := h.send(t, "POST", "/login", url.Values{"token": {pageToken}}, "Origin", h.URL)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("got %d, want 303", resp.StatusCode)
	}
	var c *http.Cookie
	for _, rc := range resp.Cookies() {
		if rc.Name == plainSessionCookie {
			c = rc
		}
	}
	if c == nil {
		t.Fatalf("no %s cookie: %v", plainSessionCookie, resp.Header["Set-Cookie"])
	}
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Secure {
		t.Errorf("cookie %s: want HttpOnly, SameSite=Strict, Path=/ and not Secure over plain HTTP", resp.Header.Get("Set-Cookie"))
	}
	body, _ := h.page(t)
	for _, want := range []string{"ops-alice", "get-patient", "GET /patients/{id}", "list-photos", `<th scope="col">Mode</th>`} {
		if !strings.Contains(body, want) {
			t.Errorf("the status page lacks %q", want)
		}
	}

	t.Run("over TLS the cookie is Secure", func(t *testing.T) {
		req := httptest.NewRequest("POST", "https://localhost/login", strings.NewReader("token="+pageToken))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.Config.Handler.ServeHTTP(rec, req)
		if got := rec.Header().Get("Set-Cookie"); rec.Code != http.StatusSeeOther || !strings.Contains(got, "; Secure") {
			t.Errorf("got %d with %q, want 303 and a Secure cookie", rec.Code, got)
		}
	})
	t.Run("a login from another site is refused", func(t *testing.T) {
		resp, _ := h.send(t, "POST", "/login", url.Values{"token": {pageToken}}, "Origin", "https://evil.example")
		if resp.StatusCode != http.StatusForbidden || len(resp.Cookies()) != 0 {
			t.Errorf("got %d with cookies %v, want 403 and none", resp.StatusCode, resp.Cookies())
		}
	})
	t.Run("logging out needs the form token and drops the cookie", func(t *testing.T) {
		_, csrf := h.page(t)
		if resp, _ := h.send(t, "POST", "/logout", url.Values{}, "Origin", h.URL); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("logout without the form token: got %d, want 403", resp.StatusCode)
		}
		if resp, _ := h.send(t, "POST", "/logout", url.Values{"csrf": {csrf}}, "Origin", h.URL); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("logout: got %d, want 303", resp.StatusCode)
		}
		if _, body := h.send(t, "GET", "/", nil); !strings.Contains(body, `action="/login"`) {
			t.Error("after logging out the page does not ask to log in")
		}
	})
}

func TestStatusPageRefusesForgedFlips(t *testing.T) {
	h := newPageAdmin(t)
	h.login(t, pageToken)
	_, csrf := h.page(t)
	applied := h.appliedCount()
	for _, tc := range []struct {
		name   string
		form   url.Values
		header []string
	}{
		{"without the form token", flipForm("", "0", "modern", "forged"), []string{"Origin", h.URL}},
		{"with another session's form token", flipForm(csrfToken(pageOtherToken), "0", "modern", "forged"), []string{"Origin", h.URL}},
		{"from another origin", flipForm(csrf, "0", "modern", "forged"), []string{"Origin", "https://evil.example"}},
		{"from another site by Fetch metadata", flipForm(csrf, "0", "modern", "forged"), []string{"Sec-Fetch-Site", "cross-site"}},
		{"from an opaque origin without Fetch metadata", flipForm(csrf, "0", "modern", "forged"), []string{"Origin", "null"}},
		{"from an opaque origin on another site", flipForm(csrf, "0", "modern", "forged"), []string{"Origin", "null", "Sec-Fetch-Site", "cross-site"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := h.send(t, "POST", "/ui/routes/get-patient", tc.form, tc.header...)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("got %d, want 403", resp.StatusCode)
			}
			checkPageHeaders(t, resp)
		})
	}
	t.Run("without a session", func(t *testing.T) {
		req, _ := http.NewRequest("POST", h.URL+"/ui/routes/get-patient", strings.NewReader(flipForm(csrf, "0", "modern", "forged").Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("got %d, want 403", resp.StatusCode)
		}
	})
	if rf, _ := h.flags.Get("get-patient"); rf.Mode != domain.ModeFallback || rf.Override != nil {
		t.Errorf("get-patient is %s with override %v, want fallback as in the file", rf.Mode, rf.Override)
	}
	if n := h.appliedCount(); n != applied {
		t.Errorf("the router was given %d new tables, want none", n-applied)
	}
	for _, e := range h.auditEntries(t) {
		if e.Action != "denied" {
			t.Errorf("audit entry %s by %s, want only denials", e.Action, e.Actor)
		}
	}
}

func TestStatusPageFlipsARouteAndShowsTheAuditEntry(t *testing.T) {
	h := newPageAdmin(t)
	h.login(t, pageToken)
	_, csrf := h.page(t)
	form := flipForm(csrf, "0", "modern", "modern has every patient <since> the backfill")
	// As a browser posts it under Referrer-Policy: no-referrer.
	resp, _ := h.send(t, "POST", "/ui/routes/get-patient", form, "Origin", "null", "Sec-Fetch-Site", "same-origin")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("got %d to %q, want 303 to /", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := h.appliedMode(t, "get-patient"); got != domain.ModeModern {
		t.Errorf("the router serves get-patient in %s, want modern", got)
	}
	entries := h.auditEntries(t)
	if len(entries) != 1 {
		t.Fatalf("got %d audit entries, want 1", len(entries))
	}
	if e := entries[0]; e.Action != "flip" || e.Actor != "ops-alice" || e.Reason != form.Get("reason") || e.FromMode != "fallback" || e.ToMode != "modern" {
		t.Errorf("audit entry %+v, want a flip from fallback to modern by ops-alice with the reason", e)
	}

	body, _ := h.page(t)
	for _, want := range []string{
		`class="flash ok" role="status">get-patient is now modern (was fallback). Audited as ops-alice.`,
		"modern has every patient &lt;since&gt; the backfill", // escaped
		"fallback → modern",
		"<td>ops-alice</td>",
		`<span class="tag override">override</span>`,
		`value="clear"`,
		`name="version" value="1"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if strings.Contains(body, "<since>") {
		t.Error("the reason is not escaped")
	}
	if again, _ := h.page(t); strings.Contains(again, "is now modern") {
		t.Error("the flash message shows twice")
	}

	t.Run("a stale form says someone else changed the route", func(t *testing.T) {
		h.send(t, "POST", "/ui/routes/get-patient", flipForm(csrf, "0", "legacy", "stale"), "Origin", h.URL)
		body, _ := h.page(t)
		if !strings.Contains(body, "someone else changed it") || !strings.Contains(body, "ops-alice: “modern has every patient") {
			t.Errorf("no stale-version message:\n%s", flashOf(body))
		}
		if rf, _ := h.flags.Get("get-patient"); rf.Mode != domain.ModeModern {
			t.Errorf("get-patient is %s, want modern still", rf.Mode)
		}
	})
	t.Run("a form without the confirmation changes nothing", func(t *testing.T) {
		f := flipForm(csrf, "1", "legacy", "unconfirmed")
		f.Del("confirm")
		h.send(t, "POST", "/ui/routes/get-patient", f, "Origin", h.URL)
		body, _ := h.page(t)
		if !strings.Contains(flashOf(body), "tick “I understand this changes live traffic”") {
			t.Errorf("no confirmation message: %s", flashOf(body))
		}
		if rf, _ := h.flags.Get("get-patient"); rf.Mode != domain.ModeModern {
			t.Errorf("get-patient is %s, want modern still", rf.Mode)
		}
	})
	t.Run("clear override returns the route to the file's mode", func(t *testing.T) {
		f := flipForm(csrf, "1", "modern", "back to the file")
		f.Set("action", "clear")
		h.send(t, "POST", "/ui/routes/get-patient", f, "Origin", h.URL)
		body, _ := h.page(t)
		if !strings.Contains(flashOf(body), "override is cleared: it is back to the file's fallback") {
			t.Errorf("no clear message: %s", flashOf(body))
		}
		if got := h.appliedMode(t, "get-patient"); got != domain.ModeFallback {
			t.Errorf("the router serves get-patient in %s, want fallback", got)
		}
		if e := h.auditEntries(t)[0]; e.Action != "clear" || e.Actor != "ops-alice" {
			t.Errorf("latest audit entry %+v, want a clear by ops-alice", e)
		}
	})
}

func TestStatusPageShowsGateRefusalsAndCharts(t *testing.T) {
	h := newPageAdmin(t)
	// Five hours ago 30 of 100 requests fell back; this hour 2 of 50.
	hour := h.clock.Now().Truncate(time.Hour)
	err := h.store.AddCounts(context.Background(), []domain.HourCount{
		{Route: "get-patient", Hour: hour.Add(-5 * time.Hour), Requests: 100, Modern: 70, Fallbacks: 30, LastFallbackAt: hour.Add(-5 * time.Hour)},
		{Route: "get-patient", Hour: hour, Requests: 50, Modern: 48, Fallbacks: 2, LastFallbackAt: hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.login(t, pageToken)
	body, csrf := h.page(t)
	for _, want := range []string{
		`aria-label="Fallback rate of get-patient per hour over the last 24 hours: 32 fallbacks in 150 requests; highest 30% at 07:00 UTC."`,
		`<title>07:00 UTC: 30% of requests fell back</title>`,
		`<title>12:00 UTC: 4% of requests fell back</title>`,
		`Fallback rate of list-photos per hour over the last 24 hours: no requests.`,
		`<span class="figure">21.3%</span>`, // 32 of 32+118, as the gates count
		`<span class="tag not-yet">not yet</span>
    <span class="verdict small">32 fallbacks in the last 7d</span>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if n := strings.Count(body, `<rect class=`); n != 48 {
		t.Errorf("got %d bars, want 24 per route", n)
	}

	h.send(t, "POST", "/ui/routes/get-patient", flipForm(csrf, "0", "modern", "try it"), "Origin", h.URL)
	body, _ = h.page(t)
	if f := flashOf(body); !strings.Contains(f, "get-patient was not changed: refused by the route's gates: fallback rate 4% is above the gate's 1%. Tick “Force past the gates” to flip anyway.") {
		t.Errorf("gate refusal: got %q, want it to name the failing number", f)
	}
	if rf, _ := h.flags.Get("get-patient"); rf.Mode != domain.ModeFallback {
		t.Errorf("get-patient is %s after a refused flip, want fallback", rf.Mode)
	}

	f := flipForm(csrf, "0", "modern", "forced on purpose")
	f.Set("force", "yes")
	h.send(t, "POST", "/ui/routes/get-patient", f, "Origin", h.URL)
	body, _ = h.page(t)
	if !strings.Contains(flashOf(body), "get-patient is now modern") || !strings.Contains(body, `<span class="tag forced">forced</span>`) {
		t.Errorf("a forced flip: got %q and no forced mark in the audit log", flashOf(body))
	}
}

// flashOf returns the page's flash message, unescaped.
func flashOf(body string) string {
	m := regexp.MustCompile(`(?s)<p class="flash[^>]*>(.*?)</p>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1])
}
