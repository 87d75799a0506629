package config

import (
	"fmt"
	"net/netip"
)

// notPublic are the networks no client on the internet connects from:
// private, shared (carrier-grade NAT, where cloud load balancers often
// sit), loopback, link-local and documentation addresses.
var notPublic = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("fc00::/7"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("2001:db8::/32"),
}

// isPublic reports whether p holds an address a client on the internet
// may connect from: whether it is not inside one of notPublic.
func isPublic(p netip.Prefix) bool {
	for _, n := range notPublic {
		if n.Bits() <= p.Bits() && n.Contains(p.Addr()) {
			return false
		}
	}
	return true
}

// widest is the widest public network, in prefix bits, a list of trusted
// proxies may hold: a regional registry's block. The widest a CDN or a
// cloud's load balancers publish is far narrower (a /12 of IPv4, a /29
// of IPv6).
func widest(a netip.Addr) int {
	if a.Is4() {
		return 8
	}
	return 16
}

// checkProxies looks at a list of trusted proxies: a client connecting
// from one may say, in X-Forwarded-For and the like, what address it
// connects from, so a network there that holds every address, or a
// share of the internet wider than [widest], lets any client choose it
// (unsafe: config check refuses it; 0.0.0.0/1 and 128.0.0.0/1 are every
// address too), and one that holds public addresses beyond one host lets
// whoever else is in it choose (a warning). what says what a client's
// choice would fool.
func (d *checker) checkProxies(field string, list []Prefix, what string) {
	for i, p := range list {
		at := fmt.Sprintf("%s[%d]", field, i)
		switch {
		case p.Bits() == 0:
			d.unsafeAt(at, "%s is every address: any client could set %s; list only your load balancers' networks", p, what)
		case p.Bits() < widest(p.Addr()) && isPublic(p.Prefix):
			d.unsafeAt(at, "%s is wider than a /%d and holds public addresses, a share of the internet no load balancer needs: any client in it could set %s; list only your load balancers' networks", p, widest(p.Addr()), what)
		case p.IsSingleIP() || !isPublic(p.Prefix):
		default:
			d.warnAt(at, "%s holds public addresses: any client in it could set %s; list only your load balancers' networks", p, what)
		}
	}
}
