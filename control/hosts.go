package control

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync/atomic"
)

// Hosts are the host names the admin listener answers to besides
// localhost and IP addresses (config.Admin.AdminHosts). Reloads swap them;
// requests read them without a lock.
type Hosts struct {
	list atomic.Pointer[[]string]
}

// Set replaces the names.
func (h *Hosts) Set(list []string) { h.list.Store(&list) }

// allowed reports whether the admin listener answers to a request whose
// Host (r.Host: the absolute-form target's host, else the Host header;
// X-Forwarded-Host is never read) is host. The port is not compared: a
// load balancer's differs, and a rebinding page could name ours.
//
// What it stops is DNS rebinding: a page on a name its owner points at
// 127.0.0.1 (or at the listener's address) is, to the browser, the same
// origin as the listener, so it could read /metrics and the login page
// and post the status page's forms with the operator's cookie; its
// requests carry its own name. An IP address is always answered to: a
// browser sends one only when it connected to that address, and it is
// how Prometheus and orchestrators' probes reach a pod. So is an empty
// Host (HTTP/1.0): no browser sends one.
func (h *Hosts) allowed(host string) bool {
	if host == "" {
		return true
	}
	if name, _, err := net.SplitHostPort(host); err == nil {
		host = name
	}
	// A name with its root's dot is the same name to DNS.
	host = strings.TrimSuffix(host, ".")
	host = strings.TrimPrefix(strings.TrimSuffix(host, "]"), "[")
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if h == nil {
		return false
	}
	if list := h.list.Load(); list != nil {
		for _, name := range *list {
			if strings.EqualFold(host, name) {
				return true
			}
		}
	}
	return false
}

// checkHost refuses, before any handler, cookie or store work, a request
// whose Host the admin listener does not answer to (Hosts.Check), and
// records the refusal.
func (a *admin) checkHost(next http.Handler) http.Handler {
	return a.Hosts.Check(next, "admin.listen", func(r *http.Request) {
		a.security(r, "", reasonHost, hostAction)
	})
}

// Check returns next behind the Host check of a listener that answers to
// the names in h (nil: localhost and IP addresses only) and the host name
// of the address setting listen names: a request whose Host it does not
// answer to (allowed) is refused with 421, in JSON, without quoting the
// name back, after refused (if not nil) is called. The admin listener and
// the backfill's and verify's --metrics-listen share it: each may show
// what a rebinding page must not read.
func (h *Hosts) Check(next http.Handler, listen string, refused func(*http.Request)) http.Handler {
	msg := map[string]string{
		"error": "this listener does not answer to this host name; reach it by localhost, an IP address, " +
			listen + "'s name or a name listed in admin.hosts",
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.allowed(r.Host) {
			if refused != nil {
				refused(r)
			}
			writeJSON(w, http.StatusMisdirectedRequest, msg)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hostAction stands in the security line of a refused Host for the
// method and path, which the refused request may have made up.
const hostAction = "any request"
