package domain

import "strings"

// AdminCookiePrefix begins the name of every cookie the admin listener
// sets (its status page's session and flash). Browsers do not keep cookies
// apart by port, so a backend answering through the public listener on
// the same host could set them: the facade drops such a Set-Cookie from
// backends' answers, and the admin listener names no cookie without it.
const AdminCookiePrefix = "strangler_"

// NamesAdminCookie reports whether the Set-Cookie field value v would set
// a cookie the admin listener reads: its name begins with
// AdminCookiePrefix, or it has no name and its value does (a browser sends
// a nameless cookie "=strangler_x=1" as "strangler_x=1").
func NamesAdminCookie(v string) bool {
	return strings.HasPrefix(strings.TrimLeft(v, " \t="), AdminCookiePrefix)
}
