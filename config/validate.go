package config

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"strangler/domain"
	"strangler/internal/human"
	"strangler/stats"
)

// maxReplayBody bounds max_replay_body, top-level and per route: a body
// kept for a replay is held in memory, and the default replay_budget,
// 16 times the top-level one, wrapped around to 0 from 1073741824GiB, so
// config check blamed a replay_budget the file did not set.
const maxReplayBody = 1 << 30

// maxRetireAfter bounds routes[].retire_after: a year of a route's
// hourly counts is kept for it.
const maxRetireAfter = 365 * 24 * time.Hour

// reservedRoute labels requests that match no route in metrics and logs.
const reservedRoute = "default"

func (d *checker) validate(c *Config) {
	d.checkAddr("listen", c.Listen)
	d.checkAddr("admin.listen", c.Admin.Listen)
	if sharePort(c.Listen, c.Admin.Listen) {
		d.errorAt("admin.listen", "must differ from listen (%s): keep the admin API off the public listener", c.Listen)
	}
	if c.Backends.Legacy.URL.URL == nil {
		d.errorAt("backends.legacy.url", "is required")
	}
	if c.Backends.Modern.URL.URL == nil {
		d.errorAt("backends.modern.url", "is required")
	}
	d.checkTLS("tls", c.TLS)
	d.checkTLS("admin.tls", c.Admin.TLS)
	d.checkUpstreamTLS("backends.legacy.tls", &c.Backends.Legacy)
	d.checkUpstreamTLS("backends.modern.tls", &c.Backends.Modern)
	d.checkBackendTimeout("backends.legacy.timeout", c.Backends.Legacy.Timeout)
	d.checkBackendTimeout("backends.modern.timeout", c.Backends.Modern.Timeout)
	d.validateAdmin(c)
	for i, m := range c.AllowMethods {
		if m == "CONNECT" || m == "TRACE" {
			d.errorAt(fmt.Sprintf("allow_methods[%d]", i), "%s is never let through: CONNECT would tunnel past the facade, TRACE reflects credentials", m)
		}
	}
	if c.MaxConnections < 0 {
		d.errorAt("max_connections", "must not be negative; 0, as leaving it out, is half the process's open-file limit")
	}
	if c.MaxReplayBody > maxReplayBody {
		d.errorAt("max_replay_body", "%s is more than %s: a body kept for a replay is held in memory", c.MaxReplayBody, ByteSize(maxReplayBody))
	} else if c.MaxReplayBody > c.ReplayBudget {
		d.errorAt("replay_budget", "%s is less than max_replay_body (%s): no such body could ever be buffered; raise it or lower max_replay_body",
			c.ReplayBudget, c.MaxReplayBody)
	}
	d.checkStore(c.Store)
	d.validateRepairs(c.Repairs)
	d.validateRoutes(c)
	d.validateApprovals(c)
	d.validateBackfill(c.Backfill)
	d.validateEncryption(c)
	d.validateForceKey(c)
	d.validateSecrets(c)
	d.checkProxies("trusted_proxies", c.TrustedProxies,
		"the X-Forwarded-For, X-Original-URL and other forwarded headers the backends read as the facade's word")
	d.checkProxies("admin.trusted_proxies", c.Admin.TrustedProxies,
		"the address the admin lockout, the security log and the audit log take it for")
	// applyDefaults made a scope left out the default: empty is written.
	if len(c.IdempotencyScope) == 0 {
		d.warnAt("idempotency_scope", "lists nothing, so every client's Idempotency-Keys are one space: a client that learns another's key can read that client's answer back; leave it out for [header:Authorization]")
	}
}

// maxBackendTimeout bounds backends.*.timeout. A longer one is no
// timeout at all, which a 0 is not either (it leaves the default), and
// near the duration limit it overflowed the wait for a dual write's
// primary after the shutdown grace (AfterGrace) into a negative: the
// facade stopped without waiting, leaving the write unknown.
const maxBackendTimeout = time.Hour

func (d *checker) checkBackendTimeout(field string, t Duration) {
	if time.Duration(t) > maxBackendTimeout {
		d.errorAt(field, "%s is longer than %s: a backend that takes longer to start answering is down; a streaming answer is not cut off by it",
			human.Duration(time.Duration(t)), human.Duration(maxBackendTimeout))
	}
}

// maxRepairWorkers bounds repairs.workers: the worker pool holds its
// slots and queue in channels of a few times that size, made at the
// start, so a number near the int limit crashed the start that config
// check had let through.
const maxRepairWorkers = 1024

func (d *checker) validateRepairs(r Repairs) {
	// A negative count made every write dead at its first failed
	// delivery: the attempt count always passed it.
	if r.MaxAttempts < 0 {
		d.errorAt("repairs.max_attempts", "must not be negative; leave it out for %d", DefaultRepairMaxAttempts)
	}
	// The delay is cut to max_backoff from the first retry: a longer
	// backoff would be ignored, not obeyed.
	if r.Backoff > r.MaxBackoff {
		d.errorAt("repairs.backoff", "%s is longer than max_backoff (%s): the delays never exceed max_backoff; raise it or lower backoff",
			human.Duration(time.Duration(r.Backoff)), human.Duration(time.Duration(r.MaxBackoff)))
	}
	if r.Workers < 0 || r.Workers > maxRepairWorkers {
		d.errorAt("repairs.workers", "must be from 1 to %d; leave it out for %d", maxRepairWorkers, DefaultRepairWorkers)
	}
}

// minTokenLength keeps admin tokens out of guessing range.
const minTokenLength = 16

// tokenUnsafe says why no request could present the admin token s, or
// is "": an HTTP header cannot carry a line break, and the white space
// at either end of one is taken off before the token is compared. A
// token from a ${file:…} that ends in a blank line, or an environment
// variable set with a space at its end, passes every other check and is
// never matched. It never quotes s: it is a secret.
func tokenUnsafe(s Secret) string {
	switch {
	case strings.Contains(string(s), "\n"):
		return "holds a line break, which an HTTP header cannot carry"
	case strings.TrimSpace(string(s)) != string(s):
		return "starts or ends with white space, which is taken off what a request presents"
	}
	return ""
}

func (d *checker) validateAdmin(c *Config) {
	names := map[string]bool{}
	// A token value names one actor: two names sharing it would make the
	// audit log and four eyes credit whichever name comes last, and give
	// the other's holder that one's role.
	owner := map[Secret]string{}
	if c.Admin.Token != "" {
		owner[c.Admin.Token] = "admin.token's"
	}
	for i, t := range c.Admin.Tokens {
		at := fmt.Sprintf("admin.tokens[%d]", i)
		if other, ok := owner[t.Token]; ok && t.Token != "" {
			d.errorAt(at+".token", "is the same as %s: give each name its own token", other)
		} else {
			owner[t.Token] = fmt.Sprintf("%s's (%s)", t.Name, at)
		}
		switch {
		case !isRouteName(t.Name):
			d.errorAt(at+".name", "%s", nameRefusal(t.Name))
		case t.Name == GuardActor:
			d.errorAt(at+".name", "%q is reserved: the guard's rollbacks carry that name", t.Name)
		case t.Name == RampActor:
			d.errorAt(at+".name", "%q is reserved: the steps of scheduled ramps carry that name", t.Name)
		case t.Name == ConfigActor:
			d.errorAt(at+".name", "%q is reserved: the deletions of what removed routes left behind carry that name", t.Name)
		case names[t.Name] || t.Name == "admin" && c.Admin.Token != "":
			d.errorAt(at+".name", "duplicate token name %q", t.Name)
		}
		names[t.Name] = true
		if bad := tokenUnsafe(t.Token); bad != "" {
			d.errorAt(at+".token", "%s: no request could present it", bad)
		} else if len(t.Token) < minTokenLength {
			d.errorAt(at+".token", "is shorter than %d characters: too easy to guess", minTokenLength)
		}
		if t.Role == "" {
			d.errorAt(at+".role", "is required: viewer (read only), operator (also flips) or admin (also repair bodies, retries and discards)")
		}
		if t.Expires != nil && t.Expired(d.Now()) {
			d.warnAt(at+".expires", "%s has passed: the token is refused (401) since the end of that day (UTC); renew it or remove the token", t.Expires)
		}
	}
	if bad := tokenUnsafe(c.Admin.Token); bad != "" {
		d.errorAt("admin.token", "%s: no request could present it", bad)
	} else if c.Admin.Token != "" && len(c.Admin.Token) < minTokenLength {
		d.errorAt("admin.token", "is shorter than %d characters: too easy to guess", minTokenLength)
	}
	if len(c.Admin.AdminTokens()) == 0 && !isLoopback(c.Admin.Listen) {
		d.errorAt("admin.listen", "%s is reachable from other machines, so the admin API needs admin.token or admin.tokens", c.Admin.Listen)
	}
	for i, h := range c.Admin.Hosts {
		at := fmt.Sprintf("admin.hosts[%d]", i)
		if _, err := netip.ParseAddr(h); err == nil {
			d.errorAt(at, "%q is an IP address, which the admin listener always answers to; list host names", h)
		} else if h == "" || !isListenHost(h) {
			d.errorAt(at, "invalid host name %q; write a name such as admin.example.internal, without a port, scheme or trailing dot", h)
		}
	}
}

// sharePort reports whether two listen addresses take the same port on
// an address both would listen on: the same port (not 0, which the
// system picks) and the same host, or either on every interface (":8080"
// takes 127.0.0.1:8080 too), or localhost and a loopback address.
func sharePort(a, b string) bool {
	hostA, portA, errA := net.SplitHostPort(a)
	hostB, portB, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || portA != portB || portA == "0" {
		return false
	}
	if hostA == hostB || isWildcard(hostA) || isWildcard(hostB) {
		return true
	}
	ipA, ipB := net.ParseIP(hostA), net.ParseIP(hostB)
	switch {
	case ipA != nil && ipB != nil:
		return ipA.Equal(ipB)
	case hostA == "localhost":
		return ipB != nil && ipB.IsLoopback()
	case hostB == "localhost":
		return ipA != nil && ipA.IsLoopback()
	}
	return false
}

// isWildcard reports whether a listen host means every interface.
func isWildcard(host string) bool {
	ip := net.ParseIP(host)
	return host == "" || ip != nil && ip.IsUnspecified()
}

// maxApprovals bounds approvals: more token names than that agreeing on
// one flip is a committee, not four eyes.
const maxApprovals = 5

// validateApprovals checks approvals, top-level and per route, and that
// enough tokens may change routing to ever give them: a route nobody
// could approve a flip of would be stuck where it is.
func (d *checker) validateApprovals(c *Config) {
	field, most := "approvals", c.Approvals
	if c.Approvals < 0 || c.Approvals > maxApprovals {
		d.errorAt("approvals", "must be from 1 (no approval) to %d token names agreeing, the requester included", maxApprovals)
		most = 0
	}
	deciders := 0
	for _, t := range c.Admin.AdminTokens() {
		if t.Role.Allows(RoleOperator) {
			deciders++
		}
	}
	for i, r := range c.Routes {
		if r.Approvals == nil {
			continue
		}
		at := fmt.Sprintf("routes[%d].approvals", i)
		if *r.Approvals < 1 || *r.Approvals > maxApprovals {
			d.errorAt(at, "must be from 1 (no approval) to %d token names agreeing, the requester included", maxApprovals)
		} else if *r.Approvals > most {
			field, most = at, *r.Approvals
		}
	}
	if most > 1 && deciders < most {
		d.errorAt(field, "%d needs %d admin tokens with the operator or admin role (one requests, the others approve); the configuration has %d", most, most, deciders)
	}
}

// isLoopback reports whether a listen address only accepts connections
// from this machine.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (d *checker) checkAddr(field, addr string) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		d.errorAt(field, "invalid address %q; write host:port or :port", addr)
		return
	}
	if !isListenHost(host) {
		d.errorAt(field, "invalid host %q; write an IP address, a host name, or nothing for every interface", host)
	}
	if n, err := ParseWhole(port); err != nil || n < 0 || n > 65535 {
		d.errorAt(field, "invalid port %q", port)
	}
}

// isListenHost reports whether host can name where to listen: nothing,
// an IP address (an IPv6 one with its zone), or a host name of letters,
// digits, - and dots. Anything else, a space before an address or a
// scheme left in (http://), passed config check and failed the start
// with "no such host".
func isListenHost(host string) bool {
	if host == "" {
		return true
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	for label := range strings.SplitSeq(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return len(host) <= 253
}

func (d *checker) validateRoutes(c *Config) {
	names := map[string]int{}
	// byShape groups routes whose paths match exactly the same requests, so
	// finding conflicts stays linear in the number of routes.
	byShape := map[string][]int{}
	for i := range c.Routes {
		r := &c.Routes[i]
		at := func(field string) string { return fmt.Sprintf("routes[%d].%s", i, field) }
		switch {
		case r.Name == "":
			d.errorAt(at("name"), "is required")
		case !isRouteName(r.Name):
			d.errorAt(at("name"), "%s", nameRefusal(r.Name))
		case r.Name == "." || r.Name == "..":
			// A path segment every HTTP client and server removes: the
			// admin API, the CLI and the status page could not name it.
			d.errorAt(at("name"), "invalid name %q: a URL path cannot name it (/admin/routes/%s); use a letter or digit too", r.Name, r.Name)
		case r.Name == reservedRoute:
			d.errorAt(at("name"), "%q is reserved for requests that match no route", r.Name)
		default:
			if first, dup := names[r.Name]; dup {
				d.errorAt(at("name"), "duplicate route name %q (also routes[%d])", r.Name, first)
			}
			names[r.Name] = i
		}
		if r.Match.Path == "" {
			d.errorAt(at("match"), "is required")
		} else {
			shape := r.Match.Shape()
			for _, j := range byShape[shape] {
				if c.Routes[j].Match.Overlaps(r.Match) {
					d.errorAt(at("match"), "%q conflicts with routes[%d] (%s) %q: both match the same requests",
						r.Match, j, c.Routes[j].Name, c.Routes[j].Match)
					break
				}
			}
			byShape[shape] = append(byShape[shape], i)
		}
		if r.Mode == "" {
			d.errorAt(at("mode"), "is required; want legacy, fallback or modern")
		}
		// A gate refuses a flip while a rate is above it: at 100% it never
		// does (the guard's bound is refused for it, but a gate of 100 may
		// stand for "none" in files that work).
		for _, g := range []struct {
			field string
			limit *Percent
		}{{"gates.max_mismatch_rate", r.Gates.MaxMismatchRate}, {"gates.max_fallback_rate", r.Gates.MaxFallbackRate}} {
			if g.limit != nil && *g.limit == 100 {
				d.warnAt(at(g.field), "is 100%%, which no rate is above: the gate never refuses a flip; leave it out for no gate")
			}
		}
		if r.Percent != nil {
			if _, err := domain.CheckPercent(float64(*r.Percent)); err != nil {
				d.errorAt(at("percent"), "%s %v", domain.PercentString(float64(*r.Percent)), err)
			}
		}
		// Options of other modes are allowed on any route: a flip at run
		// time may move the route into the mode they serve.
		if r.IDField != "" {
			if p, err := domain.ParseFieldPath(r.IDField); err != nil {
				d.errorAt(at("id_field"), "%v", err)
			} else if slices.ContainsFunc(p, func(s domain.PathStep) bool { return s.Kind == domain.StepAny }) {
				d.errorAt(at("id_field"), "%q has [*]: it must name one value", r.IDField)
			}
		}
		d.validateEntity(r, at)
		// The guard rolls back when modern's error rate passes the bound,
		// which a rate never does past 100%: at 100 the guard never acted.
		if r.Guard != nil && !(r.Guard.MaxErrorRate > 0 && r.Guard.MaxErrorRate < 100) {
			d.errorAt(at("guard.max_error_rate"), "must be more than 0 and less than 100: the guard acts when modern's error rate passes it, which 100%% never is")
		}
		if r.Guard != nil {
			if w := time.Duration(r.Guard.Window); w != 0 && (w < time.Second || w > stats.MaxWindow) {
				d.errorAt(at("guard.window"), "%s is not from 1s to %s: the facade keeps recent counts by the second, for %s",
					human.Duration(w), human.Duration(stats.MaxWindow), human.Duration(stats.MaxWindow))
			}
		}
		// A negative count would be met by an empty window: the guard would
		// roll back on modern's first error, the verdict retire a legacy
		// path modern never served.
		if r.Guard != nil && r.Guard.MinRequests < 0 {
			d.errorAt(at("guard.min_requests"), "must not be negative; leave it out for %d", DefaultGuardMinRequests)
		}
		// Counts are kept by the hour, for retire_after and a day more: a
		// shorter window reads the hours it falls in, and near the duration
		// limit that day more overflowed into a negative, purging the counts
		// the verdict needed.
		if a := time.Duration(r.RetireAfter); a < time.Hour || a > maxRetireAfter {
			d.errorAt(at("retire_after"), "%s is not from 1h to %s: the facade counts requests by the hour",
				human.Duration(a), human.Duration(maxRetireAfter))
		}
		if r.RetireMinRequests < 0 {
			d.errorAt(at("retire_min_requests"), "must not be negative; leave it out for %d", DefaultRetireMinRequests)
		}
		if r.Compare != nil {
			for _, e := range r.Compare.Validate() {
				d.errorAt(at("compare."+e.Field), "%s", e.Msg)
			}
		}
		if r.FallbackOn != nil && len(r.FallbackOn) == 0 {
			d.errorAt(at("fallback_on"), "lists no trigger; leave it out for all of 404, 5xx, timeout and error")
		}
		if r.MaxReplayBody != nil && (*r.MaxReplayBody == 0 || *r.MaxReplayBody > maxReplayBody) {
			d.errorAt(at("max_replay_body"), "must be from 1 to %s: a body kept for a replay is held in memory", ByteSize(maxReplayBody))
		} else if r.MaxReplayBody != nil && *r.MaxReplayBody > c.ReplayBudget {
			d.errorAt(at("max_replay_body"), "%s exceeds replay_budget (%s): no such body could ever be buffered; lower it or raise replay_budget",
				*r.MaxReplayBody, c.ReplayBudget)
		}
		if r.MaxBody != nil && *r.MaxBody == 0 {
			d.errorAt(at("max_body"), "must be more than 0; leave it out for the top-level max_body")
		}
	}
}

// validateEntity checks that a route's entity is keyed by one of its path
// parameters.
func (d *checker) validateEntity(r *Route, at func(string) string) {
	if r.ReadRepair && r.Entity == "" {
		d.errorAt(at("read_repair"), "needs entity: the kind of thing the path names, such as patients")
	}
	if r.Entity == "" || r.Match.Path == "" {
		return
	}
	params := r.Match.Params()
	switch {
	case r.EntityKey != "" && !slices.Contains(params, r.EntityKey):
		d.errorAt(at("entity_key"), "{%s} is not a parameter of %q", r.EntityKey, r.Match.Path)
	case r.EntityKey == "" && len(params) == 0:
		d.errorAt(at("entity"), "needs a path parameter to key the entity by, such as /patients/{id}")
	}
}

// EntityParam is the path parameter holding the route's entity key: the
// entity_key, or else the last parameter.
func (r *Route) EntityParam() string {
	if r.EntityKey != "" {
		return r.EntityKey
	}
	params := r.Match.Params()
	if len(params) == 0 {
		return ""
	}
	return params[len(params)-1]
}

func isRouteName(s string) bool {
	return s != "" && !strings.ContainsFunc(s, func(c rune) bool { return !isNameChar(c) })
}

func isNameChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// nameRefusal says why isRouteName refuses s, naming the first character
// it does not take: a look-alike (Cyrillic а, U+0430, in "pаtients")
// otherwise reads as a name of lower-case letters refused for no reason
// shown.
func nameRefusal(s string) string {
	for i, c := range []rune(s) {
		if !isNameChar(c) {
			return fmt.Sprintf("invalid name %q: character %d is %#U; use lower-case a-z, digits, -, _ and .", s, i+1, c)
		}
	}
	return fmt.Sprintf("invalid name %q; use lower-case letters, digits, -, _ and .", s)
}
