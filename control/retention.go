package control

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"strangler/config"
	"strangler/domain"
	"strangler/stats"
	"strangler/store"
)

// countsFloor is the least time hourly counts and client versions are
// kept, whatever the routes ask: well past the report's longest period
// (30 days), and wide enough that a replica still on an older
// configuration, during a rolling reload, never deletes hours another
// replica's retirement window still counts.
const countsFloor = 90 * 24 * time.Hour

// purgeEvery is how often old counts are deleted: they age by the hour.
// purgeCheck is how often a replica looks whether it leads, so that a
// replica taking the lease over purges within a minute.
const (
	purgeEvery = time.Hour
	purgeCheck = time.Minute
)

// leftoverGrace is how long the learned schemas, mismatch samples and
// noise of a route no longer in the configuration must have gone without any
// replica adding to them before they are deleted: a replica still
// serving the older configuration, during a rolling change, keeps them
// alive.
const leftoverGrace = time.Hour

// CountsPurger deletes the hourly counts (per-client versions included)
// that no report, gate or retirement verdict can ask for any more, so the
// store keeps traffic history only as long as the migration needs it;
// and what routes no longer in the configuration left behind: learned
// response schemas, mismatch samples and learned noise.
type CountsPurger struct {
	Flags *Flags
	Store interface {
		PurgeCounts(ctx context.Context, olderThan time.Time) (int, error)
	}
	// Leftovers deletes the schemas, samples and noise of removed routes; nil
	// keeps them.
	Leftovers interface {
		PurgeRemovedRoutes(ctx context.Context, keep []string, notSince time.Time, audit func(store.Leftovers) domain.AuditEntry) ([]store.Leftovers, error)
	}
	// Lead says whether this replica holds the lease of the work done
	// once for all replicas (Rollouts, the ramp driver's): only it
	// purges. Nil purges on this replica whatever the others do.
	Lead interface{ Leading() bool }
	Log  *slog.Logger
	Now  func() time.Time
}

// CountsRetention is how long hourly counts are kept for routes: the
// longest retirement window among them plus a day, and never less than
// countsFloor.
func CountsRetention(routes []RouteFlags) time.Duration {
	keep := countsFloor
	for _, rf := range routes {
		if d := time.Duration(rf.Route.RetireAfter) + 24*time.Hour; d > keep {
			keep = d
		}
	}
	return keep
}

// Run purges every purgeEvery, while this replica leads, until ctx ends.
// A failed purge is logged; the next one deletes what it left.
func (p *CountsPurger) Run(ctx context.Context) error {
	tick := time.NewTicker(purgeCheck)
	defer tick.Stop()
	var last time.Time
	for {
		last = p.purgeIfDue(ctx, last)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// purgeIfDue purges if this replica leads and its last purge, at last,
// is purgeEvery old; it returns when it last purged.
func (p *CountsPurger) purgeIfDue(ctx context.Context, last time.Time) time.Time {
	now := p.Now()
	if (p.Lead != nil && !p.Lead.Leading()) || now.Sub(last) < purgeEvery {
		return last
	}
	if err := p.Purge(ctx); err != nil && ctx.Err() == nil {
		p.Log.Warn("purging hourly counts past their retention failed; the next purge will", "error", err)
	}
	return now
}

// Purge deletes the counts older than the retention of the routes served
// now, and what routes not served left behind (leftoverGrace after the
// last replica added to it), each route's audited.
func (p *CountsPurger) Purge(ctx context.Context) error {
	now := p.Now()
	routes := p.Flags.All()
	// The hours are filed, and the leftovers stamped, on the store's
	// clock (see stats.Flush and store.Store.PurgeRemovedRoutes): a
	// leader days ahead would otherwise delete hours a retirement window
	// still reads, and one an hour ahead the schemas and noise a replica
	// still on the older configuration learns.
	storeNow := now
	if clk, ok := p.Store.(stats.Clock); ok {
		off, err := clk.ClockOffset(ctx)
		if err != nil {
			return err
		}
		storeNow = now.Add(off)
	}
	n, err := p.Store.PurgeCounts(ctx, storeNow.Add(-CountsRetention(routes)))
	if err != nil {
		return err
	}
	if n > 0 {
		p.Log.Info("purged hourly counts past their retention", "rows", n)
	}
	if p.Leftovers == nil {
		return nil
	}
	keep := make([]string, len(routes))
	for i, rf := range routes {
		keep[i] = rf.Route.Name
	}
	purged, err := p.Leftovers.PurgeRemovedRoutes(ctx, keep, storeNow.Add(-leftoverGrace), func(l store.Leftovers) domain.AuditEntry {
		return domain.AuditEntry{At: storeNow, Actor: config.ConfigActor, Action: "route_data_purged", Route: l.Route,
			Detail: fmt.Sprintf("the route is no longer in the configuration: its %d learned response schemas, %d shadow mismatch samples and %d learned noise fields were deleted", l.Schemas, l.Samples, l.Noise)}
	})
	for _, l := range purged {
		p.Log.Info("deleted what a route no longer in the configuration left behind", "route", l.Route, "schemas", l.Schemas, "samples", l.Samples, "noise", l.Noise)
	}
	return err
}
