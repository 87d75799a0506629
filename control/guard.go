package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config"
	"strangler/domain"
	"strangler/metrics"
	"strangler/stats"
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
	live      GuardStats
	audit     ChangeReader
	log       *slog.Logger
	now       func() time.Time
	rollbacks *prometheus.CounterVec

	// mu guards looks: per guarded route, what the guard saw at its
	// previous look.
	mu    sync.Mutex
	looks map[string]look
}

// GuardStats are the live counts the guard judges modern by.
type GuardStats interface {
	Window(route string, now time.Time, d time.Duration) stats.Window
}

// look is what the guard saw of a route at its previous look.
type look struct {
	// mode, percent and version are the route's flags then.
	mode    domain.Mode
	percent float64
	version int64
	// at is when the guard looked; since is when it looked last before
	// the flags changed, where the route's window starts at the latest:
	// the guard judges a flip by what modern answered after it. Without
	// it, the errors that tripped the guard, still in the window, rolled
	// the route back again as soon as an operator flipped it back, modern
	// fixed or not, until the window had passed. Looks are a second
	// apart, so the window starts within a second of the flip. The zero
	// since is before everything.
	at, since time.Time
	// refused says its last rollback failed (the store is away: no audit,
	// no flip), which is logged once, not on every look.
	refused bool
}

// ChangeReader reads the latest change of a route's flags from the audit
// log (store.Store.LastFlagChange).
type ChangeReader interface {
	LastFlagChange(ctx context.Context, route string) (domain.AuditEntry, bool, error)
}

// guardInterval is how often the guard looks at the rates.
const guardInterval = time.Second

// guardActor is the guard's name in the audit log and on the overrides it
// sets; an override it set is a hold. No admin token may carry the name.
const guardActor = config.GuardActor

// NewGuard returns a guard over the flags, registering its metric.
func NewGuard(flags *Flags, live GuardStats, audit ChangeReader, reg prometheus.Registerer, log *slog.Logger, now func() time.Time) *Guard {
	g := &Guard{
		flags: flags, live: live, audit: audit, log: log, now: now,
		rollbacks: metrics.GuardRollbacks.CounterVec(),
		looks:     map[string]look{},
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
	guarded := g.flags.Guarded()
	since := g.lookAt(guarded, now)
	for _, rf := range guarded {
		g.rollbacks.WithLabelValues(rf.Route.Name) // a series from the start, at 0
		gd := rf.Route.Guard
		// The guard watches the modes in which modern answers clients: those
		// that take a percent.
		if !rf.Mode.TakesPercent() || rf.Hold() != nil {
			continue
		}
		window := windowSince(now, time.Duration(gd.Window), since[rf.Route.Name])
		w := g.live.Window(rf.Route.Name, now, window)
		failed := domain.Share{N: w.ModernErrors, Of: w.ModernAttempts}
		if w.ModernAttempts < int64(gd.MinRequests) || !failed.Past(float64(gd.MaxErrorRate)) {
			g.refused(rf.Route.Name, false)
			continue
		}
		mode, percent := g.target(ctx, rf)
		reason := fmt.Sprintf("modern error rate %.3g%% (%d of %d) over %s passed the guard's %v%%",
			failed.Percent(), w.ModernErrors, w.ModernAttempts, window.Round(time.Second), float64(gd.MaxErrorRate))
		version := rf.Version
		_, err := g.flags.Apply(ctx, Flip{
			Route: rf.Route.Name, Actor: guardActor, Reason: reason, Mode: &mode, Percent: percent,
			Force: true, IfMatch: &version, action: "rollback",
		})
		switch {
		case errors.Is(err, ErrStale):
			continue // another replica, or an operator, changed it first
		case err != nil:
			if !g.refused(rf.Route.Name, true) {
				g.log.Error("guard rollback failed", "route", rf.Route.Name, "error", err)
			}
			continue
		}
		g.refused(rf.Route.Name, false)
		g.rollbacks.WithLabelValues(rf.Route.Name).Inc()
		g.log.Warn("guard rolled a route back", "route", rf.Route.Name, "from_mode", rf.Mode, "to_mode", mode, "reason", reason)
	}
}

// windowSince is the window d before now, cut short to start at since.
func windowSince(now time.Time, d time.Duration, since time.Time) time.Duration {
	if !since.IsZero() {
		d = min(d, now.Sub(since))
	}
	return d
}

// lookAt notes when the guard looks at each guarded route and returns,
// per route, when its window starts at the latest (see look).
func (g *Guard) lookAt(guarded []RouteFlags, now time.Time) map[string]time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	looks := make(map[string]look, len(guarded))
	since := make(map[string]time.Time, len(guarded))
	for _, rf := range guarded {
		name := rf.Route.Name
		l := look{mode: rf.Mode, percent: domain.FullPercent(rf.Percent), version: rf.Version}
		if prev, ok := g.looks[name]; ok {
			l.since, l.refused = prev.since, prev.refused
			if prev.mode != l.mode || prev.percent != l.percent || prev.version != l.version {
				l.since = prev.at
			}
		}
		l.at = now
		looks[name], since[name] = l, l.since
	}
	g.looks = looks
	return since
}

// refused notes whether route's last rollback failed, and reports
// whether its previous one had.
func (g *Guard) refused(route string, failed bool) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	l := g.looks[route]
	was := l.refused
	l.refused = failed
	g.looks[route] = l
	return was
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
// ramp step) raising the percent within its mode. It reads that change
// from the audit log, however many entries that change nothing came
// after it on the route: as a look at the route's latest 50 entries, a
// viewer's refused flips, each audited, pushed the change out of sight
// and the guard stepped back a whole mode. A guard's own rollback ends
// the search, but the guard acts only on routes it does not hold, whose
// latest change is an operator's anyway.
func (g *Guard) rampedFrom(ctx context.Context, rf RouteFlags) (*float64, bool) {
	if rf.Override == nil || domain.FullPercent(rf.Percent) >= 100 {
		return nil, false
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	e, ok, err := g.audit.LastFlagChange(sctx, rf.Route.Name)
	if err != nil {
		g.log.Warn("guard: reading the audit log failed; stepping back a whole mode", "route", rf.Route.Name, "error", err)
		return nil, false
	}
	if !ok || e.Action != "flip" && e.Action != "ramp" {
		return nil, false // a clear, a rollback
	}
	raised := e.FromMode == e.ToMode && e.ToMode == rf.Mode &&
		domain.FullPercent(e.ToPercent) == domain.FullPercent(rf.Percent) && domain.FullPercent(e.FromPercent) < domain.FullPercent(rf.Percent)
	if !raised {
		return nil, false
	}
	return e.FromPercent, true
}
