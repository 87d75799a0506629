package control

import (
	"net/http"
	"strangler/metrics"

	"github.com/prometheus/client_golang/prometheus"
)

// denyReason is why the admin listener turned a caller away, as the
// security log lines and strangler_admin_denied_total say it: a closed
// set.
type denyReason string

const (
	// reasonMissingToken: an admin API call without a token.
	reasonMissingToken denyReason = "missing_token"
	// reasonInvalidToken: a token that matches none configured.
	reasonInvalidToken denyReason = "invalid_token"
	// reasonExpiredToken: a token, or a session's token, past its expiry.
	reasonExpiredToken denyReason = "expired_token"
	// reasonLockedOut: an address locked out after too many failures.
	reasonLockedOut denyReason = "locked_out"
	// reasonRole: an action the token's role does not allow.
	reasonRole denyReason = "role"
	// reasonCrossOrigin: a change a browser sent from another site.
	reasonCrossOrigin denyReason = "cross_origin"
	// reasonNoSession: a status page change without a valid session.
	reasonNoSession denyReason = "no_session"
	// reasonFormToken: a status page form with a missing or wrong CSRF
	// token.
	reasonFormToken denyReason = "form_token"
	// reasonTokenInQuery: a token in the query string, where it ends up
	// in access logs and browser history.
	reasonTokenInQuery denyReason = "token_in_query"
	// reasonHost: a Host the admin listener does not answer to (DNS
	// rebinding, or a name missing from admin.hosts).
	reasonHost denyReason = "host"
)

func denyReasons() []denyReason {
	return []denyReason{
		reasonMissingToken, reasonInvalidToken, reasonExpiredToken, reasonLockedOut, reasonRole,
		reasonCrossOrigin, reasonNoSession, reasonFormToken, reasonTokenInQuery, reasonHost,
	}
}

// newDeniedCounter returns strangler_admin_denied_total with every
// reason at 0, registered on reg unless reg is nil.
func newDeniedCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := metrics.AdminDenied.CounterVec()
	for _, r := range denyReasons() {
		c.WithLabelValues(string(r))
	}
	if reg != nil {
		reg.MustRegister(c)
	}
	return c
}

// security records a refused caller: a "security" log line saying who
// (the token's name, or unknown; never the token), from where, what they
// tried (an endpoint's pattern or an action, never a path with its
// parameters) and why; and strangler_admin_denied_total{reason}.
// A lockout's line adds its scope (address or listener).
func (a *admin) security(r *http.Request, actor string, reason denyReason, action string, more ...any) {
	if actor == "" {
		actor = "unknown"
	}
	a.denied.WithLabelValues(string(reason)).Inc()
	a.log.Warn("security", append([]any{"actor", actor, "remote_addr", a.clientAddr(r), "action", action, "reason", string(reason)}, more...)...)
}

// lockoutScopes are the labels of strangler_admin_lockouts_total: one
// address locked out, or the whole listener.
var lockoutScopes = []string{"address", "listener"}

// newLockoutCounter returns strangler_admin_lockouts_total with each
// scope at 0, registered on reg unless reg is nil.
func newLockoutCounter(reg prometheus.Registerer) *prometheus.CounterVec {
	c := metrics.AdminLockouts.CounterVec()
	for _, s := range lockoutScopes {
		c.WithLabelValues(s)
	}
	if reg != nil {
		reg.MustRegister(c)
	}
	return c
}
