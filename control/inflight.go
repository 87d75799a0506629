package control

import (
	"context"
	"fmt"
	"strings"

	"strangler/config"
	"strangler/domain"
)

// InFlightError refuses a change of a route (a flip, a reloaded file, a
// start with a changed file) that would send its writes straight to a
// backend which still has dual writes of the route's to get from the
// journal: a later write to a resource would reach it first, and the
// journaled one, delivered after, would undo it there while the client saw
// both succeed. It is an ErrConflict (409) for the admin API.
type InFlightError struct {
	// Routes names each route refused, as its field in the file
	// (routes[2] (put-item)), with the backend it would overtake.
	Routes []string
}

func (e *InFlightError) Error() string {
	return strings.Join(e.Routes, "; ") + ": dual writes journaled under the route's primary are still on their way there " +
		"(strangler repairs list --route NAME); change the route once they are delivered, or discard them"
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *InFlightError) Is(target error) bool { return target == ErrConflict }

// switchWrites makes next the effective configuration in place of prev:
// commit stores the change and serves it. It is the one place that decides
// whether a change may alter where a route sends its writes. When next
// sends some route's writes elsewhere than prev does, the journal is
// checked first (inFlight), and the check and commit run holding dual
// writes back from the journal (Tables.HoldWrites): a write journaled
// under prev after the check would be one it did not see. Called with mu
// held.
func (f *Flags) switchWrites(ctx context.Context, prev, next *config.Config, commit func() error) error {
	if changed := changedWrites(prev, next); len(changed) > 0 {
		release := f.tables.HoldWrites()
		defer release()
		if err := f.inFlight(ctx, prev, next, changed); err != nil {
			return err
		}
	}
	return commit()
}

// changedWrites lists the routes of next (their indexes) that send writes
// elsewhere than they did under prev, or that prev did not have; every
// route when prev is nil (a start, which knows no earlier configuration).
// Routes that send writes where they did are not checked: a change of
// other routes is no reason to refuse.
func changedWrites(prev, next *config.Config) []int {
	var changed []int
	for i := range next.Routes {
		r := &next.Routes[i]
		if p := previous(prev, next, r); p == nil || !sameWrites(p, r) {
			changed = append(changed, i)
		}
	}
	return changed
}

// inFlight checks the routes changed of next (indexes) against the
// journal's open writes, and returns an *InFlightError if one would
// overtake its own journaled writes: those journaled under its name, or
// under the name it had in prev.
func (f *Flags) inFlight(ctx context.Context, prev, next *config.Config, changed []int) error {
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	open, err := f.store.OpenPrimaries(sctx)
	if err != nil {
		// Logged, not returned: it may name the store's host. The admin
		// API says ErrUnavailable's own words, a reload this line.
		f.log.Error("reading the journal's open writes failed, so a change of where routes send writes is refused", "error", err)
		return fmt.Errorf("%w: the journal's open writes could not be read to check that no route overtakes them", ErrUnavailable)
	}
	var refused []string
	for _, i := range changed {
		r := &next.Routes[i]
		owed := open[r.Name]
		if p := previous(prev, next, r); p != nil && p.Name != r.Name {
			owed = union(owed, open[p.Name])
		}
		for primary := range owed {
			if secondary := other(primary); writesTo(r, secondary) {
				refused = append(refused, fmt.Sprintf("routes[%d] (%s) would send writes straight to %s", i, r.Name, secondary))
				break
			}
		}
	}
	if len(refused) > 0 {
		return &InFlightError{Routes: refused}
	}
	return nil
}

// previous is the route of prev that r of next continues: the one of its
// name or, renamed, the one of its match whose name next no longer has;
// nil if none (or prev is nil).
func previous(prev, next *config.Config, r *config.Route) *config.Route {
	if prev == nil {
		return nil
	}
	var renamed *config.Route
	for i := range prev.Routes {
		switch p := &prev.Routes[i]; {
		case p.Name == r.Name:
			return p
		case renamed == nil && sameMatch(p.Match, r.Match) && !hasRoute(next, p.Name):
			renamed = p
		}
	}
	return renamed
}

// sameMatch reports whether a and b match the same requests, whatever
// their parameters are named.
func sameMatch(a, b config.Match) bool {
	return a.Method == b.Method && a.Shape() == b.Shape()
}

func hasRoute(cfg *config.Config, name string) bool {
	for i := range cfg.Routes {
		if cfg.Routes[i].Name == name {
			return true
		}
	}
	return false
}

// union is the primaries of a and b.
func union(a, b map[domain.Backend]bool) map[domain.Backend]bool {
	out := make(map[domain.Backend]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

// sameWrites reports whether p and r send writes to the same backends.
func sameWrites(p, r *config.Route) bool {
	return writesTo(p, domain.Legacy) == writesTo(r, domain.Legacy) && writesTo(p, domain.Modern) == writesTo(r, domain.Modern)
}

// writesTo reports whether the route, as it is configured, sends a
// client's write to backend b other than from the journal.
func writesTo(r *config.Route, b domain.Backend) bool {
	switch r.Mode {
	case domain.ModeLegacy:
		return b == domain.Legacy
	case domain.ModeShadow, domain.ModeDualWrite:
		return b == r.PrimaryBackend()
	case domain.ModeFallback:
		// Modern first; legacy for the clients outside the percent and
		// for the writes modern provably never received.
		return true
	}
	// modern: legacy keeps the clients outside the percent.
	return b == domain.Modern || r.Percent != nil && *r.Percent < 100
}

// other is the backend that is not b.
func other(b domain.Backend) domain.Backend {
	if b == domain.Modern {
		return domain.Legacy
	}
	return domain.Modern
}
