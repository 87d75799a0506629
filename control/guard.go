package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config"
	"strangler/store"
)

// Guard rolls back a route in modern or fallback mode, percent rollouts
// included, when modern's 5xx and timeout rate on this replica passes the
// route's bound, audited with actor "guard". When several replicas trip at
// once, the first flip wins and the others see a stale version.
type Guard struct {
	flags     *Flags
	live      LiveStats
	audit     AuditReader
	log       *slog.Logger
	now       func() time.Time
	rollbacks *prometheus.CounterVec
	// quiet holds routes just rolled back: they are left alone for a
	// window, so the errors that tripped the guard do not trip it again.
	quiet map[string]time.Time
}

// guardInterval is how often the guard looks at the rates.
const guardInterval = time.Second

// NewGuard returns a guard over the flags, registering its metric.
func NewGuard(flags *Flags, live LiveStats, audit AuditReader, reg prometheus.Registerer, log *slog.Logger, now func() time.Time) *Guard {
	g := &Guard{
		flags: flags, live: live, audit: audit, log: log, now: now, quiet: map[string]time.Time{},
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_guard_rollbacks_total",
			Help: "Routes the guard rolled back because modern's error rate passed the bound.",
		}, []string{"route"}),
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

// Check rolls back every route whose guard has tripped.
func (g *Guard) Check(ctx context.Context) {
	now := g.now()
	for _, rf := range g.flags.Guarded() {
		g.rollbacks.WithLabelValues(rf.Route.Name) // a series from the start, at 0
		gd := rf.Route.Guard
		if rf.Mode != config.ModeModern && rf.Mode != config.ModeFallback || now.Before(g.quiet[rf.Route.Name]) {
			continue
		}
		window := time.Duration(gd.Window)
		w := g.live.Window(rf.Route.Name, now, window)
		if w.ModernAttempts < int64(gd.MinRequests) || w.ModernErrorRate()*100 <= float64(gd.MaxErrorRate) {
			continue
		}
		mode, percent := g.previous(ctx, rf)
		reason := fmt.Sprintf("modern error rate %.3g%% (%d of %d) over %s passed the guard's %v%%",
			w.ModernErrorRate()*100, w.ModernErrors, w.ModernAttempts, window, float64(gd.MaxErrorRate))
		version := rf.Version
		_, err := g.flags.Apply(ctx, Flip{
			Route: rf.Route.Name, Actor: "guard", Reason: reason, Mode: &mode, Percent: percent,
			Force: true, IfMatch: &version, action: "rollback",
		})
		switch {
		case errors.Is(err, ErrStale):
			continue // another replica, or an operator, changed it first
		case err != nil:
			g.log.Error("guard rollback failed", "route", rf.Route.Name, "error", err)
			continue
		}
		g.quiet[rf.Route.Name] = now.Add(window)
		g.rollbacks.WithLabelValues(rf.Route.Name).Inc()
		g.log.Warn("guard rolled a route back", "route", rf.Route.Name, "from_mode", rf.Mode, "to_mode", mode, "reason", reason)
	}
}

// previous is the mode (and percent) the route had before it reached its
// current one: from the audit log when a flip brought it there, otherwise
// the lifecycle's step back — fallback for a read route in modern,
// dual-write for a write route, legacy for fallback or a partial rollout.
func (g *Guard) previous(ctx context.Context, rf RouteFlags) (config.Mode, *float64) {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	entries, err := g.audit.AuditLog(sctx, store.AuditFilter{Route: rf.Route.Name, Limit: 50})
	if err == nil {
		for _, e := range entries {
			if e.Action != "flip" && e.Action != "clear" && e.Action != "rollback" {
				continue
			}
			if e.ToMode == string(rf.Mode) && samePercent(e.ToPercent, rf.Percent) && e.FromMode != "" {
				return config.Mode(e.FromMode), e.FromPercent
			}
			break // the latest change did not bring it here: the file did
		}
	}
	switch {
	case rf.Mode == config.ModeFallback, rf.Percent != nil && *rf.Percent < 100:
		return config.ModeLegacy, nil
	case isRead(rf.Route.Match.Method):
		return config.ModeFallback, nil
	}
	return config.ModeDualWrite, nil
}

func samePercent(a, b *float64) bool {
	full := func(p *float64) float64 {
		if p == nil {
			return 100
		}
		return *p
	}
	return full(a) == full(b)
}

func isRead(method string) bool {
	return method == "" || method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}
