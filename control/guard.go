package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config"
	"strangler/domain"
	"strangler/metrics"
	"strangler/store"
)

// Guard rolls back a route in modern or fallback mode, percent rollouts
// included, when modern's 5xx and timeout rate on this replica passes the
// route's bound, audited with actor "guard". A rollback steps back one
// step, never forward, and then holds the route: the guard leaves it alone
// until an operator flips or clears it. When several replicas trip at
// once, the first flip wins and the others see a stale version, then the
// hold.
type Guard struct {
	flags     *Flags
	live      LiveStats
	audit     AuditReader
	log       *slog.Logger
	now       func() time.Time
	rollbacks *prometheus.CounterVec
}

// guardInterval is how often the guard looks at the rates.
const guardInterval = time.Second

// guardActor is the guard's name in the audit log and on the overrides it
// sets; an override it set is a hold. No admin token may carry the name.
const guardActor = config.GuardActor

// NewGuard returns a guard over the flags, registering its metric.
func NewGuard(flags *Flags, live LiveStats, audit AuditReader, reg prometheus.Registerer, log *slog.Logger, now func() time.Time) *Guard {
	g := &Guard{
		flags: flags, live: live, audit: audit, log: log, now: now,
		rollbacks: metrics.GuardRollbacks.CounterVec(),
	}
	reg.MustRegister(g.rollbacks)
	return g
}

// Run checks every route each second until ctx ends.
func (g *Guard) Run(ctx context.Context) error {
	tick := time.NewTicker(guardInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			g.Check(ctx)
		}
	}
}

// Check rolls back every route whose guard has tripped and that it does
// not hold already.
func (g *Guard) Check(ctx context.Context) {
	now := g.now()
	for _, rf := range g.flags.Guarded() {
		g.rollbacks.WithLabelValues(rf.Route.Name) // a series from the start, at 0
		gd := rf.Route.Guard
		// The guard watches the modes in which modern answers clients: those
		// that take a percent.
		if !rf.Mode.TakesPercent() || rf.Hold() != nil {
			continue
		}
		window := time.Duration(gd.Window)
		w := g.live.Window(rf.Route.Name, now, window)
		if w.ModernAttempts < int64(gd.MinRequests) || w.ModernErrorRate()*100 <= float64(gd.MaxErrorRate) {
			continue
		}
		mode, percent := g.target(ctx, rf)
		reason := fmt.Sprintf("modern error rate %.3g%% (%d of %d) over %s passed the guard's %v%%",
			w.ModernErrorRate()*100, w.ModernErrors, w.ModernAttempts, window, float64(gd.MaxErrorRate))
		version := rf.Version
		_, err := g.flags.Apply(ctx, Flip{
			Route: rf.Route.Name, Actor: guardActor, Reason: reason, Mode: &mode, Percent: percent,
			Force: true, IfMatch: &version, action: "rollback",
		})
		switch {
		case errors.Is(err, ErrStale):
			continue // another replica, or an operator, changed it first
		case err != nil:
			g.log.Error("guard rollback failed", "route", rf.Route.Name, "error", err)
			continue
		}
		g.rollbacks.WithLabelValues(rf.Route.Name).Inc()
		g.log.Warn("guard rolled a route back", "route", rf.Route.Name, "from_mode", rf.Mode, "to_mode", mode, "reason", reason)
	}
}

// target is where a rollback takes the route: back to the percent an
// operator raised it from, when the route is part of the way through a
// ramp; otherwise one step back along the lifecycle. Stepping back from
// modern to fallback keeps the share of a percent rollout on modern, now
// with legacy answering whatever modern fails.
func (g *Guard) target(ctx context.Context, rf RouteFlags) (domain.Mode, *float64) {
	if from, ok := g.rampedFrom(ctx, rf); ok {
		return rf.Mode, from
	}
	back := rf.Mode.StepBack()
	if back == domain.ModeFallback {
		return back, rf.Percent
	}
	return back, nil
}

// rampedFrom is the percent the route was raised from to reach its
// current one, when it is part of the way through a ramp: its percent is
// below 100 and the latest change of its flags was an operator's flip (or
// ramp step) raising the percent within its mode. It reads the audit log,
// but never follows the guard's own rollbacks: those end the search, and
// the guard acts only on routes it does not hold, whose latest change is
// an operator's anyway.
func (g *Guard) rampedFrom(ctx context.Context, rf RouteFlags) (*float64, bool) {
	if rf.Override == nil || domain.FullPercent(rf.Percent) >= 100 {
		return nil, false
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	entries, err := g.audit.AuditLog(sctx, store.AuditFilter{Route: rf.Route.Name, Limit: 50})
	if err != nil {
		g.log.Warn("guard: reading the audit log failed; stepping back a whole mode", "route", rf.Route.Name, "error", err)
		return nil, false
	}
	for _, e := range entries {
		switch e.Action {
		case "flip", "ramp":
		case "clear", "rollback":
			return nil, false
		default:
			continue // denied flips, repairs: the flags did not change
		}
		raised := e.FromMode == e.ToMode && e.ToMode == rf.Mode &&
			domain.FullPercent(e.ToPercent) == domain.FullPercent(rf.Percent) && domain.FullPercent(e.FromPercent) < domain.FullPercent(rf.Percent)
		if !raised {
			return nil, false
		}
		return e.FromPercent, true
	}
	return nil, false
}
