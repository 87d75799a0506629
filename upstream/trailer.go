package upstream

import (
	"net/http"
	"strings"
)

// NotTrailer reports whether k, a canonical field name, cannot be a
// trailer field of a message the facade passes on, in either direction:
// the one rule for a client's request trailer (see NotRequestTrailer) and
// a backend's response trailer (see cleanTrailer). RFC 9110 section 6.5.1
// keeps out of trailers what is needed before the content: framing and
// hop-by-hop fields, routing, authentication and cookies, request
// modifiers (controls, conditionals), response controls (section 10.2),
// and content format. The list holds every name net/http's servers refuse
// to declare as a trailer field (httpguts.ValidTrailerHeader, x/net
// v0.59.0), so no field is announced that Go then does not send. Each
// side drops the other side's names too: they mean nothing there, and one
// list is one rule to read.
func NotTrailer(k string) bool {
	switch k {
	case
		// Framing and connection.
		"Connection", "Content-Length", "Keep-Alive", "Proxy-Connection", "Te", "Trailer",
		"Transfer-Encoding", "Upgrade",
		// Routing and request modifiers.
		"Cache-Control", "Expect", "Host", "Max-Forwards", "Pragma", "Range",
		// Authentication and state.
		"Authorization", "Cookie", "Proxy-Authenticate", "Proxy-Authorization", "Realm",
		"Set-Cookie", "Www-Authenticate",
		// Response controls and context.
		"Age", "Content-Location", "Date", "Expires", "Location", "Retry-After", "Vary",
		// Content format.
		"Content-Encoding", "Content-Range", "Content-Type":
		return true
	}
	return strings.HasPrefix(k, "If-") // conditionals
}

// NotRequestTrailer reports whether k, a canonical field name, cannot be
// a trailer field of a client's request: NotTrailer's names, and those the
// facade reads or sets in a request's header alone, which a trailer field
// would otherwise change behind it at the backend: the method overrides
// (the facade routes, refuses and journals by the method they give) and
// X-Request-Id (the facade's id for the exchange, in its logs and the
// backend's).
func NotRequestTrailer(k string) bool {
	switch k {
	case "X-Http-Method-Override", "X-Http-Method", "X-Method-Override", "X-Request-Id":
		return true
	}
	return NotTrailer(k)
}

// cleanTrailer removes from trailer, the trailer fields of a backend's
// answer, those no client may read there: the names NotTrailer gives and
// those the trailer's own Connection field names. The reverse proxy
// passes a trailer field the backend did not announce on with
// http.TrailerPrefix, which net/http's server writes as it is: a backend's
// Content-Length, Transfer-Encoding, Connection or Host trailer field
// reached the client (found by the red team).
func cleanTrailer(trailer http.Header) {
	RemoveHopByHop(trailer)
	for k := range trailer {
		if NotTrailer(k) {
			delete(trailer, k)
		}
	}
}
