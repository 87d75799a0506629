package router

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"

	"strangler/upstream"
)

// setForwarded sets X-Forwarded-For/Proto/Host on out for a request that
// came in as in. Values the client sent are kept only from trusted
// proxies: anyone else could claim any address.
func (t *Table) setForwarded(in *http.Request, out http.Header) {
	trusted := t.isTrusted(in.RemoteAddr)
	out.Del("Forwarded")
	if ip, _, err := net.SplitHostPort(in.RemoteAddr); err == nil {
		if prior := in.Header["X-Forwarded-For"]; trusted && len(prior) > 0 {
			ip = strings.Join(prior, ", ") + ", " + ip
		}
		out.Set("X-Forwarded-For", ip)
	} else {
		out.Del("X-Forwarded-For")
	}
	proto, host := t.origin(in)
	out.Set("X-Forwarded-Proto", proto)
	out.Set("X-Forwarded-Host", host)
}

// origin is the scheme and host the client asked for: the facade's own
// (TLS or not, the Host header), or what a trusted proxy says it was.
func (t *Table) origin(in *http.Request) (scheme, host string) {
	scheme, host = "http", in.Host
	if in.TLS != nil {
		scheme = "https"
	}
	if t.isTrusted(in.RemoteAddr) {
		if v := in.Header.Get("X-Forwarded-Proto"); v != "" {
			scheme = v
		}
		if v := in.Header.Get("X-Forwarded-Host"); v != "" {
			host = v
		}
	}
	return scheme, host
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

// rewrite addresses the reverse proxy's outbound request to up.
func (t *Table) rewrite(up *upstream.Upstream) func(*httputil.ProxyRequest) {
	return func(pr *httputil.ProxyRequest) {
		x := exchangeFrom(pr.In.Context())
		x.served = up
		// Out.URL is the inbound URL as the proxy cleaned it; keep it for a
		// fallback to re-address the request.
		x.inURL = pr.Out.URL
		pr.Out.URL = up.Target(pr.Out.URL)
		pr.Out.Host = ""
		t.setForwarded(pr.In, pr.Out.Header)
		pr.Out.Header.Set("X-Request-Id", x.id)
		stripInternalHeaders(pr.Out.Header)
	}
}

// outboundHeader is the header a backend gets for req when the facade
// sends the request itself (a shadow copy, a journaled dual write): what
// the reverse proxy would send.
func (t *Table) outboundHeader(req *http.Request, x *exchange) http.Header {
	h := req.Header.Clone()
	upstream.RemoveHopByHop(h)
	stripInternalHeaders(h)
	t.setForwarded(req, h)
	h.Set("X-Request-Id", x.id)
	return h
}

// stripInternalHeaders removes X-Strangler-* headers a client sent, so no
// client can impersonate the facade towards a backend, and refuses h2c
// upgrades: a backend switching a proxied connection to HTTP/2 would let
// the client talk to it past the facade's routing (h2c smuggling). The
// request then proceeds as plain HTTP/1.1, as RFC 9113 section 3.1 allows.
func stripInternalHeaders(h http.Header) {
	for k := range h {
		if len(k) > 11 && strings.EqualFold(k[:11], "X-Strangler") {
			delete(h, k)
		}
	}
	if strings.EqualFold(h.Get("Upgrade"), "h2c") {
		h.Del("Upgrade")
		h.Del("Connection")
		h.Del("Http2-Settings")
	}
}
