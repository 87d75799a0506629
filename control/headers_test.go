package control

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"strangler/config"
	"strangler/domain"
)

// TestEveryAdminAnswerCarriesSecurityHeaders: JSON answers (a route, a
// refusal quoting a reason, a 401), the probes and /metrics are never
// sniffed into HTML, framed, cached or referred, whoever opens them in a
// browser; the status page keeps its own policy.
func TestEveryAdminAnswerCarriesSecurityHeaders(t *testing.T) {
	p := newPlane(t)
	reason := `{"mode": "modern", "reason": "<img src=x onerror=alert(1)>"}`
	for _, c := range []struct {
		method, path, token, body string
		csp                       string
	}{
		{"GET", "/admin/routes", aliceToken, "", apiCSP},
		{"GET", "/admin/routes/get-patient", "", "", apiCSP},               // 401
		{"PATCH", "/admin/routes/get-patient", aliceToken, reason, apiCSP}, // 428: no If-Match
		{"GET", "/admin/audit?limit=x", aliceToken, "", apiCSP},            // 400
		{"GET", "/metrics", "", "", apiCSP},
		{"GET", "/readyz", "", "", apiCSP},
		{"GET", "/healthz", "", "", apiCSP},
		{"GET", "/", "", "", pageCSP},
		{"GET", "/static/style.css", "", "", pageCSP},
		{"GET", "/no/such/page", "", "", apiCSP},            // the mux's 404
		{"DELETE", "/admin/routes", aliceToken, "", apiCSP}, // the mux's 405
	} {
		resp, _ := p.call(t, c.method, c.path, c.token, c.body)
		for k, want := range map[string]string{
			"Content-Security-Policy":      c.csp,
			"X-Frame-Options":              "DENY",
			"X-Content-Type-Options":       "nosniff",
			"Referrer-Policy":              "no-referrer",
			"Cache-Control":                "no-store",
			"Cross-Origin-Resource-Policy": "same-origin",
		} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("%s %s (%d): %s is %q, want %q", c.method, c.path, resp.StatusCode, k, got, want)
			}
		}
	}
}

// TestCookiesAreSecureBehindATrustedTLSBalancer: behind a load balancer
// that ends TLS (admin.trusted_proxies), the status page's session
// cookie is Secure, and named __Host-strangler_session, when the
// balancer says the browser used https; a
// client saying so itself, directly or to the left of the balancer's
// word, gets no such say.
func TestCookiesAreSecureBehindATrustedTLSBalancer(t *testing.T) {
	p := newPlane(t)
	var lb config.Prefix
	if err := lb.UnmarshalText([]byte("192.0.2.0/24")); err != nil {
		t.Fatal(err)
	}
	p.proxies.Set([]config.Prefix{lb})
	for _, c := range []struct {
		name, peer, proto string
		secure            bool
	}{
		{"the balancer says https", "192.0.2.1:4000", "https", true},
		{"the balancer says https after a client's http", "192.0.2.1:4000", "http, https", true},
		{"the balancer says http after a client's https", "192.0.2.1:4000", "https, http", false},
		{"a client that is no proxy says https", "198.51.100.7:4000", "https", false},
		{"the balancer says nothing", "192.0.2.1:4000", "", false},
	} {
		req := httptest.NewRequest("POST", "http://admin.internal/login", strings.NewReader("token="+aliceToken))
		req.RemoteAddr = c.peer
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if c.proto != "" {
			req.Header.Set("X-Forwarded-Proto", c.proto)
		}
		rec := httptest.NewRecorder()
		p.admin.mux.ServeHTTP(rec, req)
		got := rec.Header().Get("Set-Cookie")
		name := domain.AdminCookieName(sessionCookie, c.secure)
		if rec.Code != http.StatusSeeOther || !strings.HasPrefix(got, name+"=") {
			t.Fatalf("%s: got %d with %q, want 303 and a %s cookie", c.name, rec.Code, got, name)
		}
		if secure := strings.Contains(got, "; Secure"); secure != c.secure {
			t.Errorf("%s: cookie %q, want Secure %v", c.name, got, c.secure)
		}
	}
}

// TestOverTLSOnlyTheHostPrefixedCookieIsTheSession: over TLS the session
// is read from __Host-strangler_session alone. A strangler_session cookie,
// which script on a plain-HTTP port of the same host can set, was read
// as the session: it signed the operator in as whoever's session it
// carried. It is ignored now.
func TestOverTLSOnlyTheHostPrefixedCookieIsTheSession(t *testing.T) {
	p := newPlane(t)
	var lb config.Prefix
	if err := lb.UnmarshalText([]byte("192.0.2.0/24")); err != nil {
		t.Fatal(err)
	}
	p.proxies.Set([]config.Prefix{lb})
	viaTLS := func(method, body, cookie string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, "http://admin.internal/", strings.NewReader(body))
		if method == "POST" {
			req.URL.Path = "/login"
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.RemoteAddr = "192.0.2.1:4000"
		req.Header.Set("X-Forwarded-Proto", "https")
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		rec := httptest.NewRecorder()
		p.admin.mux.ServeHTTP(rec, req)
		return rec
	}
	login := viaTLS("POST", "token="+aliceToken, "")
	var id string
	for _, c := range login.Result().Cookies() {
		if c.Name == "__Host-strangler_session" {
			id = c.Value
		}
	}
	if id == "" {
		t.Fatalf("login over TLS set %q, want a __Host-strangler_session cookie", login.Header()["Set-Cookie"])
	}
	if body := viaTLS("GET", "", "strangler_session="+id).Body.String(); strings.Contains(body, "Signed in as") {
		t.Errorf("over TLS, a strangler_session cookie (no __Host- prefix) opened the session")
	}
	if body := viaTLS("GET", "", "__Host-strangler_session="+id).Body.String(); !strings.Contains(body, "Signed in as") {
		t.Errorf("over TLS, the __Host-strangler_session cookie did not open the session:\n%s", body)
	}
}
