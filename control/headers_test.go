package control

import "testing"

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
