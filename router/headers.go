package router

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"golang.org/x/net/http/httpguts"

	"strangler/edge/canonical"
	"strangler/upstream"
)

// forwardingFields is how many fields a request usually gains on its way
// to a backend: X-Forwarded-For, -Proto and -Host, X-Request-Id, and the
// forwarder's User-Agent. Its copy of the client's header is made with
// room for them; a map made for more than 8 fields is a table of several
// allocations, where one for 8 is one group.
const forwardingFields = 5

// forwardedHeader is the header a backend gets for the request in, whose
// request id is id: a copy of in's without the hop-by-hop fields
// (upstream.RemoveHopByHop) and what no client may pass on (dropped),
// with X-Forwarded-For, -Proto and -Host and X-Request-Id set, in one
// pass over in's fields (a clone and two passes deleting from it cost a
// pass-through request about 1,500 instructions more).
//
// The header names are spelled canonically and set directly in the map,
// their values in one allocation: Set would canonicalise each name again
// (a loop over its bytes) and allocate each value apart, on every
// exchange.
func (t *Table) forwardedHeader(in *http.Request, id string) http.Header {
	trusted := t.isTrusted(in.RemoteAddr)
	out := upstream.CloneEndToEnd(in.Header, forwardingFields, func(k string) bool { return t.dropped(k, trusted) })
	if trusted {
		if v := in.Header["Forwarded"]; len(v) > 0 {
			out["Forwarded"] = v // the forwarder drops it; a trusted one is kept
		}
	}
	proto, host := t.origin(in)
	// Each value is a slice of its own capacity: appending to one (Add)
	// cannot overwrite the next.
	vs := []string{proto, host, id, ""}
	out["X-Forwarded-Proto"] = vs[0:1:1]
	if host != "" {
		out["X-Forwarded-Host"] = vs[1:2:2]
	} else {
		// An HTTP/1.0 request may come without a Host; an empty
		// X-Forwarded-Host is one Django (USE_X_FORWARDED_HOST) and others
		// take, and refuse (400), where none sends them to their own name.
		delete(out, "X-Forwarded-Host")
	}
	out["X-Request-Id"] = vs[2:3:3]
	if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		if prior := in.Header["X-Forwarded-For"]; trusted && len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		vs[3] = ip
		out["X-Forwarded-For"] = vs[3:4:4]
	} else {
		delete(out, "X-Forwarded-For")
	}
	return out
}

// origin is the scheme and host the client asked for: the facade's own
// (TLS or not, the Host header), or what a trusted proxy says it was.
func (t *Table) origin(in *http.Request) (scheme, host string) {
	scheme, host = "http", in.Host
	if in.TLS != nil {
		scheme = "https"
	}
	if t.isTrusted(in.RemoteAddr) {
		if v := headerValue(in.Header, "X-Forwarded-Proto"); v != "" {
			scheme = v
		}
		if v := headerValue(in.Header, "X-Forwarded-Host"); v != "" {
			host = v
		}
	}
	return scheme, host
}

// dropHeaders removes from h, in one pass:
//   - X-Strangler-* headers, so no client can impersonate the facade
//     towards a backend;
//   - unless the client is a trusted proxy, what it could claim about
//     itself or the original request: X-Real-IP, Forwarded, every
//     X-Forwarded-*, and X-Original-URL and X-Rewrite-URL, which IIS,
//     Symfony and Zend serve instead of the request's own path, past the
//     route the facade chose;
//   - under headers_with_underscores: drop (the default), header names
//     with anything but letters, digits and "-", which many backends
//     read as another header (X_User as X-User).
func (t *Table) dropHeaders(h http.Header, trusted bool) {
	for k := range h {
		if t.dropped(k, trusted) {
			delete(h, k)
		}
	}
}

// dropped reports whether dropHeaders drops the field named k.
func (t *Table) dropped(k string, trusted bool) bool {
	switch {
	case facadeField(k):
	case !trusted && spoofable(k):
	case t.dropOddHeaders && canonical.OddHeaderName(k):
	default:
		return false
	}
	return true
}

// facadeField reports whether k names one of the facade's own fields,
// X-Strangler-*, in any spelling with _ for - too: the facade alone sends
// them, to backends (a dual write's X-Strangler-Primary-Id, a shadow
// copy's X-Strangler-Shadow) and to clients (X-Strangler-Backend under
// debug_headers). Under headers_with_underscores: allow, a client's
// X_Strangler_Primary_Id reached backends, which CGI and PHP read as the
// facade's X-Strangler-Primary-Id (found by the red team).
func facadeField(k string) bool {
	k = canonical.CGIName(k)
	return len(k) > 11 && strings.EqualFold(k[:11], "X-Strangler")
}

// dropForged removes the facade's own fields (see facadeField) from h,
// the header, 1xx header or trailer of a backend's answer: a backend's
// would reach the client as the facade's. Legacy's "X-Strangler-Backend:
// modern" told whoever debugs a route, with debug_headers off, that modern
// had served it (found by the red team).
func dropForged(h http.Header) {
	for k := range h {
		if facadeField(k) {
			delete(h, k)
		}
	}
}

// dropTrailer removes from trailer, the fields a client sent after a
// chunked body, what a backend must not read there: what dropHeaders drops
// from the header (a trailer field X-Forwarded-For or X-Strangler-Primary-Status
// reached the backend past it, found by the red team), and the fields that
// cannot be trailer fields of a request (upstream.NotRequestTrailer): a
// Content-Length or Transfer-Encoding trailer field made Go's transport
// fail the request, a 502 the client caused.
func (t *Table) dropTrailer(trailer http.Header, trusted bool) {
	t.dropHeaders(trailer, trusted)
	for k := range trailer {
		// Under headers_with_underscores: allow, backends read
		// X_Http_Method as X-Http-Method, as in the header.
		if upstream.NotRequestTrailer(canonical.CGIName(k)) {
			delete(trailer, k)
		}
	}
}

// onlyWebSocket leaves on h, the header of a request the forwarder
// sends on, an upgrade to WebSocket alone, or none unless allowed. Any
// other protocol, h2c above all, would let the client talk to the backend
// past the facade's routing once it switched (h2c smuggling), and the
// forwarder passes the Upgrade field's first value on whole:
// "websocket, h2c" reached a backend, which may pick h2c (found by the red
// team). The protocols are read token by token, in any case and with any
// version ("H2C/1"); the request asks for "websocket" alone if it named
// it (as RFC 6455 spells it), and is otherwise a plain HTTP/1.1 one, as
// RFC 9110 section 7.8 lets a server ignore Upgrade. HTTP2-Settings,
// which belongs to an h2c upgrade (RFC 9113 section 3.2.1), goes either
// way.
func onlyWebSocket(h http.Header, allowed bool) {
	// Names spelled canonically, read from the map: Get and Del would
	// canonicalise them again on every exchange.
	delete(h, "Http2-Settings")
	up := h["Upgrade"]
	if len(up) == 0 {
		return
	}
	if allowed && listsWebSocket(up[0]) {
		h.Set("Upgrade", "websocket") // RFC 6455's spelling, which backends compare
		return
	}
	delete(h, "Upgrade")
	delete(h, "Connection")
}

// asksWebSocket reports whether h, a client's header, asks to switch to
// WebSocket: the one upgrade the forwarder passes on (onlyWebSocket).
func asksWebSocket(h http.Header) bool { return listsWebSocket(upgradeType(h)) }

// listsWebSocket reports whether upgrade, an Upgrade field's value, names
// websocket among its protocols, in any case and with any version.
func listsWebSocket(upgrade string) bool {
	for p := range strings.SplitSeq(upgrade, ",") {
		name, _, _ := strings.Cut(strings.TrimSpace(p), "/")
		if strings.EqualFold(name, "websocket") {
			return true
		}
	}
	return false
}

// spoofable reports the (canonical) header names only a trusted proxy may
// send, in any spelling with _ for -: under headers_with_underscores:
// allow, CGI, PHP and many frameworks read X_Forwarded_For as
// X-Forwarded-For (found by the red team).
func spoofable(k string) bool {
	switch k = canonical.CGIName(k); k {
	case "Forwarded", "X-Real-Ip", "X-Original-Url", "X-Rewrite-Url":
		return true
	}
	return strings.HasPrefix(k, "X-Forwarded-")
}

func (t *Table) isTrusted(remoteAddr string) bool {
	if len(t.trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, p := range t.trusted {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// upgradeType is the protocol a message's header asks to switch to, ""
// if none: its Upgrade field, when its Connection field names upgrade.
func upgradeType(h http.Header) string {
	if !httpguts.HeaderValuesContainsToken(h["Connection"], "upgrade") {
		return ""
	}
	return headerValue(h, "Upgrade")
}

// printable reports whether s is printable ASCII alone.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}

// addHeader adds src's fields to dst. A field dst does not have takes
// src's values as they are: nothing appends to a header read from a
// backend once the client has it.
func addHeader(dst, src http.Header) {
	for k, vs := range src {
		if prior, ok := dst[k]; ok {
			dst[k] = append(prior, vs...)
		} else {
			dst[k] = vs
		}
	}
}

// outboundHeader is the header a backend gets for req when the facade
// sends the request itself (a shadow copy, a journaled dual write): what
// the forwarder sends.
func (t *Table) outboundHeader(req *http.Request, x *exchange) http.Header {
	return t.forwardedHeader(req, x.id)
}

// headerValue is h.Get(key) for a key spelled canonically, without
// canonicalising it again.
func headerValue(h http.Header, key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// localLocations turns the Location and Content-Location fields of a
// backend's answer that point at either backend into paths on the facade
// (see upstream.Local): whichever backend served the request, its client
// must reach neither backend but through the facade, nor learn their
// addresses. A legacy that redirects to modern's address (or the
// reverse) during the migration is the same leak.
func (t *Table) localLocations(h http.Header) {
	for _, name := range [...]string{"Location", "Content-Location"} {
		vs := h[name]
		for i, v := range vs {
			if l, ok := t.legacy.Local(v); ok {
				vs[i] = l
			} else if l, ok := t.modern.Local(v); ok {
				vs[i] = l
			}
		}
	}
}
