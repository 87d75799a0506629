package domain

import "strings"

// AdminCookiePrefix begins the name of every cookie the admin listener
// sets (its status page's session and flash), after HostCookiePrefix when
// it is reached over TLS. Browsers do not keep cookies apart by port, so
// a backend answering through the public listener on the same host could
// set them: the facade drops such a Set-Cookie from backends' answers, and
// the admin listener names no cookie without it.
const AdminCookiePrefix = "strangler_"

// HostCookiePrefix is RFC 6265bis's __Host- prefix: a browser keeps a
// cookie so named only when a secure origin sets it Secure, with Path=/
// and no Domain, so script on a plain-HTTP port of the same host cannot
// set it, nor add one of the same name for a longer path.
const HostCookiePrefix = "__Host-"

// AdminCookieName is the name the admin listener gives its cookie base
// ("session", "flash"): over TLS (secure) with HostCookiePrefix, for
// the cookie set Secure that only a secure origin may set.
func AdminCookieName(base string, secure bool) string {
	if secure {
		return HostCookiePrefix + AdminCookiePrefix + base
	}
	return AdminCookiePrefix + base
}

// NamesAdminCookie reports whether the Set-Cookie field value v would set
// a cookie the admin listener reads: its name, with or without
// HostCookiePrefix, begins with AdminCookiePrefix, or it has no name and
// its value does (a browser sends a nameless cookie "=strangler_x=1" as
// "strangler_x=1").
func NamesAdminCookie(v string) bool {
	name := strings.TrimPrefix(strings.TrimLeft(v, " \t="), HostCookiePrefix)
	return strings.HasPrefix(name, AdminCookiePrefix)
}
