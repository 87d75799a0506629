package router

import (
	"errors"
	"log/slog"
	"net/http"

	"strangler/domain"
	"strangler/force"
)

// forced returns the backend a valid X-Strangler-Force header sends this
// request to, or "" to route it as usual. A valid value names this route
// and a backend and has not expired; it sends the request there whatever
// the mode and split, with no fallback and no shadow copy. Anything else
// (no key configured, a forged, expired or malformed value, another
// route's value, a dual-write route, where a write on one side only would
// split the data) is ignored and counted, and the request routed as if
// the header were absent. The header itself never reaches a backend.
func (t *Table) forced(x *exchange, req *http.Request) domain.Backend {
	values := req.Header[force.Header] // spelled canonically
	if len(values) == 0 {
		return ""
	}
	rt := x.route
	claim, reason := force.Claim{}, ""
	switch {
	case t.force == nil:
		reason = "off"
	case len(values) > 1:
		reason = "malformed"
	default:
		var err error
		now := t.now()
		if t.storeLead != nil {
			// The expiry is on the store's clock (control's force-token
			// issuing): replicas hours apart agree on when it passes.
			now = now.Add(t.storeLead())
		}
		claim, err = t.force.Verify(values[0], now)
		switch {
		case errors.Is(err, force.ErrExpired):
			reason = "expired"
		case errors.Is(err, force.ErrForged):
			reason = "forged"
		case err != nil:
			reason = "malformed"
		case claim.Route != rt.name:
			reason = "other_route"
		case rt.mode == domain.ModeDualWrite:
			reason = "dual_write"
		case claim.Backend != string(domain.Legacy) && claim.Backend != string(domain.Modern):
			reason = "malformed"
		}
	}
	if reason != "" {
		t.metrics.forceIgnored.WithLabelValues(rt.name, reason).Inc()
		t.log.LogAttrs(req.Context(), slog.LevelDebug, "force header ignored",
			slog.String("route", rt.name), slog.String("reason", reason), slog.String("request_id", x.id))
		return ""
	}
	x.forced = domain.Backend(claim.Backend)
	t.metrics.forced.WithLabelValues(rt.name, claim.Backend).Inc()
	if x.span != nil {
		x.span.SetAttributes(attrForced.String(claim.Backend))
	}
	t.log.LogAttrs(req.Context(), slog.LevelInfo, "forced request",
		slog.String("route", rt.name), slog.String("backend", claim.Backend), slog.String("method", req.Method),
		slog.String("force_token", claim.ID), slog.String("request_id", x.id))
	return x.forced
}
