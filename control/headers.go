package control

import "net/http"

// apiCSP is the policy of every answer of the admin listener but the
// status page's: JSON, text and metrics, which a browser opened in a tab
// must never run, load anything for, or let another site frame.
const apiCSP = "default-src 'none'; frame-ancestors 'none'"

// withHeaders sets the admin listener's security headers before h
// answers: what mature admin APIs send (GitHub's, Kubernetes'), so that
// an answer quoting what a less trusted person wrote (a reason, a
// backend's error) is never sniffed into HTML, framed over a button, or
// kept by a cache or a proxy, and leaks no URL in a Referer. The status
// page replaces the policy with its own (pageHeaders).
func withHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", apiCSP)
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		hd.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}
