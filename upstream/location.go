package upstream

import (
	"net/url"
	"strings"
)

// Local is the inverse of Target for a URL a backend names in its answer
// (Location, Content-Location): when loc points at this backend, its
// host and port and under its base path, it is the path on the facade
// that reaches the same resource (base path removed, query and fragment
// kept), and ok is true; otherwise loc is returned as it is. A backend
// that builds its redirects from its own address (a framework reading the
// Host it was sent, which is the backend's) sent clients to an address
// only the facade can reach, and told every client the backends' internal
// names and ports (found by the red team). nginx's proxy_redirect default
// does the same; Caddy and Envoy leave it to configuration.
func (u *Upstream) Local(loc string) (_ string, ok bool) {
	// The common case, a path already (or a URL on the public host), is
	// decided before any parsing.
	if !strings.Contains(loc, "//") {
		return loc, false
	}
	l, err := url.Parse(loc)
	if err != nil {
		return loc, false
	}
	path, ok := u.FacadePath(l)
	if !ok {
		return loc, false
	}
	if strings.HasPrefix(path, "//") {
		// Else a reference to another host (//evil.example/…): "/." is
		// a dot segment clients remove, after reading it as a path.
		path = "/." + path
	}
	out := path
	if l.ForceQuery || l.RawQuery != "" {
		out += "?" + l.RawQuery
	}
	if l.Fragment != "" {
		out += "#" + l.EscapedFragment()
	}
	return out, true
}

// FacadePath is the escaped path on the facade that reaches what URL l
// names on this backend, and ok is true, when l is an absolute URL of this
// backend (its host and port, no user info) under its base path: the base
// path ends at a segment boundary, so that with a base of /api neither
// /apiX/1 nor /api-old/1 is under it. Dot segments are l's to have
// removed (url.URL.ResolveReference does).
func (u *Upstream) FacadePath(l *url.URL) (_ string, ok bool) {
	if l.Host == "" || l.Opaque != "" || l.User != nil || !sameHost(l, u.URL) {
		return "", false
	}
	path := l.EscapedPath()
	if base := strings.TrimSuffix(u.URL.EscapedPath(), "/"); base != "" {
		rest, under := strings.CutPrefix(path, base)
		if !under || rest != "" && rest[0] != '/' {
			return "", false
		}
		path = rest
	}
	if path == "" {
		path = "/"
	}
	return path, true
}

// sameHost reports whether a and b name one host and port, a port left
// out being its scheme's default.
func sameHost(a, b *url.URL) bool {
	return strings.EqualFold(a.Hostname(), b.Hostname()) && port(a) == port(b)
}

// port is u's port, or its scheme's default when it gives none.
func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	switch strings.ToLower(u.Scheme) {
	case "https", "wss":
		return "443"
	case "http", "ws", "":
		return "80"
	}
	return ""
}
