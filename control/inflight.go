package control

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
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

// journalCheck judges a change of where routes send writes against the
// journal's open writes (open, as store.Store.OpenPrimaries counts
// them): nil, or the *InFlightError that refuses it.
type journalCheck func(open map[string]map[domain.Backend]int) error

// switchWrites makes next the effective configuration in place of prev:
// commit stores the change and serves it. It is the one place that decides
// whether a change may alter where a route sends its writes. When next
// sends some route's writes elsewhere than prev does, or no longer has a
// route of prev (or, at a start, may lack routes the journal names),
// commit is given the check (inFlight) to pass before it changes
// anything: a flip in the store's transaction that stores it, once the
// route's fence moved (store.CheckJournal), so that no replica sharing
// the store journals a write under the flags replaced that the check
// does not see (it is refused, domain.ErrStaleFlags); a reload or a
// start reads the journal first (readJournal). The check and commit run
// holding this replica's dual writes back from the journal
// (Tables.HoldWrites): a write journaled under prev after the check
// would be one it did not see. Otherwise commit is given no check (nil).
// Called with mu held.
func (f *Flags) switchWrites(prev, next *config.Config, commit func(check journalCheck) error) error {
	changed, dropped := changedWrites(prev, next), droppedRoutes(prev, next)
	if prev != nil && len(changed) == 0 && len(dropped) == 0 {
		return commit(nil)
	}
	release := f.tables.HoldWrites()
	defer release()
	var left []owed
	err := commit(func(open map[string]map[domain.Backend]int) error {
		var err error
		left, err = inFlight(prev, next, changed, dropped, open)
		return err
	})
	if err != nil {
		return err
	}
	for _, o := range left {
		f.log.Warn("the configuration no longer has a route whose dual writes are still owed to its secondary; they are delivered from the journal (strangler repairs list --route NAME)",
			"route", o.route, "owed", o.count, "secondary", string(o.secondary))
	}
	return nil
}

// changedWrites lists the routes of next (their indexes) that send writes
// elsewhere than they did under prev, or that prev did not have; every
// route when prev is nil (a start, which knows no earlier configuration).
// Routes that send writes where they did are not checked: a change of
// other routes is no reason to refuse. Nor are routes that take no writes
// (GET, HEAD, OPTIONS), under prev and next: a change of where their
// reads go moves no write, so it holds none back, nor waits for the
// journal (a guarded read route that the guard rolls back while the store
// is slow held every dual write of the facade for as long as the store
// took to refuse the rollback, every second).
func changedWrites(prev, next *config.Config) []int {
	var changed []int
	for i := range next.Routes {
		r := &next.Routes[i]
		p := previous(prev, next, r)
		switch {
		case p != nil && sameWrites(p, r):
		case !takesWrites(r.Match) && (p == nil || !takesWrites(p.Match)):
		default:
			changed = append(changed, i)
		}
	}
	return changed
}

// droppedRoutes lists the routes of prev that no route of next continues
// (by name, or renamed by match: previous); none when prev is nil.
func droppedRoutes(prev, next *config.Config) []*config.Route {
	if prev == nil {
		return nil
	}
	continued := map[string]bool{}
	for i := range next.Routes {
		if p := previous(prev, next, &next.Routes[i]); p != nil {
			continued[p.Name] = true
		}
	}
	var dropped []*config.Route
	for i := range prev.Routes {
		if !continued[prev.Routes[i].Name] {
			dropped = append(dropped, &prev.Routes[i])
		}
	}
	return dropped
}

// owed is a route's open writes still on their way to secondary.
type owed struct {
	route     string
	secondary domain.Backend
	count     int
}

// readJournal runs check, unless nil, on the journal's open writes read
// now.
func (f *Flags) readJournal(ctx context.Context, check journalCheck) error {
	if check == nil {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	open, err := f.store.OpenPrimaries(sctx)
	if err != nil {
		// Logged, not returned: it may name the store's host. The admin
		// API says ErrUnavailable's own words, a reload this line.
		f.log.Error("reading the journal's open writes failed, so a change of where routes send writes is refused", "error", err)
		return fmt.Errorf("%w: the journal's open writes could not be read to check that no route overtakes them", ErrUnavailable)
	}
	return check(open)
}

// checkAndApply is a start's commit (switchWrites): the check, then the
// effective configuration served.
func (f *Flags) checkAndApply(ctx context.Context) func(check journalCheck) error {
	return func(check journalCheck) error {
		if err := f.readJournal(ctx, check); err != nil {
			return err
		}
		return f.applyLocked()
	}
}

// inFlight checks next against the journal's open writes (open), and
// returns an *InFlightError if it would let a later write overtake one of
// them:
//   - a route changed (indexes) would send writes straight to the backend
//     that writes journaled under its name, or under the name of a route
//     of prev matching some of its requests (the name it had, renamed; or
//     another route's, whose name went to another match), are still on
//     their way to;
//   - a route of prev that next no longer has (dropped) has writes on
//     their way to a backend which what now serves its requests (serving:
//     the route of next with its match, else every route that may match
//     some of them and the default backend) sends writes to;
//   - at a start (prev nil), a route the journal names and the file does
//     not (removed or renamed while the facade was down: the journal keeps
//     no match to pair it by) has writes on their way to a backend which
//     the default backend or any route of the file taking writes sends
//     writes to.
//
// It returns the open writes of routes next no longer has that are not
// refused: the worker delivers them whatever the configuration says.
func inFlight(prev, next *config.Config, changed []int, dropped []*config.Route, open map[string]map[domain.Backend]int) ([]owed, error) {
	var refused []string
	for _, i := range changed {
		r := &next.Routes[i]
		owedTo := map[domain.Backend]int{}
		for primary, n := range open[r.Name] {
			owedTo[other(primary)] += n
		}
		for _, p := range overlapping(prev, r) {
			for primary, n := range open[p.Name] {
				owedTo[other(primary)] += n
			}
		}
		for _, secondary := range []domain.Backend{domain.Legacy, domain.Modern} {
			if n := owedTo[secondary]; n > 0 && writesTo(r, secondary) {
				refused = append(refused, fmt.Sprintf("routes[%d] (%s) would send writes straight to %s, ahead of %s owed there", i, r.Name, secondary, dualWrites(n)))
				break
			}
		}
	}
	var gone []owed
	for _, p := range dropped {
		gone = appendOwed(gone, p.Name, open[p.Name])
	}
	if prev == nil {
		for _, name := range slices.Sorted(maps.Keys(open)) {
			if !hasRoute(next, name) {
				gone = appendOwed(gone, name, open[name])
			}
		}
	}
	var left []owed
	for _, o := range gone {
		var m *config.Match
		if p := routeNamed(prev, o.route); p != nil {
			m = &p.Match
		}
		by := overtaker(next, m, o.secondary)
		switch {
		case by == "":
			left = append(left, o)
		case m == nil:
			refused = append(refused, fmt.Sprintf("route %s of the journal, which the file does not have (removed or renamed while the facade was down), has %s owed to %s, which %s would send writes straight to",
				o.route, dualWrites(o.count), o.secondary, by))
		default:
			refused = append(refused, fmt.Sprintf("route %s, which the file no longer has, has %s owed to %s, which %s would send its requests straight to",
				o.route, dualWrites(o.count), o.secondary, by))
		}
	}
	if len(refused) > 0 {
		return nil, &InFlightError{Routes: refused}
	}
	return left, nil
}

// dualWrites is "1 dual write", "2 dual writes" and so on.
func dualWrites(n int) string {
	if n == 1 {
		return "1 dual write"
	}
	return fmt.Sprintf("%d dual writes", n)
}

// overlapping lists the routes of prev, other than the one named as r,
// that served some of the requests r serves; none when prev is nil.
func overlapping(prev *config.Config, r *config.Route) []*config.Route {
	if prev == nil {
		return nil
	}
	var list []*config.Route
	for i := range prev.Routes {
		if p := &prev.Routes[i]; p.Name != r.Name && p.Match.Overlaps(r.Match) {
			list = append(list, p)
		}
	}
	return list
}

// appendOwed appends to list the writes of route owed to each secondary,
// from the counts of its open writes per primary.
func appendOwed(list []owed, route string, primaries map[domain.Backend]int) []owed {
	for _, primary := range []domain.Backend{domain.Legacy, domain.Modern} {
		if n := primaries[primary]; n > 0 {
			list = append(list, owed{route: route, secondary: other(primary), count: n})
		}
	}
	return list
}

// overtaker names what in next would send a write of a route next no
// longer has straight to b, or "" if nothing would. m is that route's
// match (nil at a start: the journal keeps no route's match).
func overtaker(next *config.Config, m *config.Match, b domain.Backend) string {
	routes, all := serving(next, m)
	for _, i := range routes {
		if r := &next.Routes[i]; writesTo(r, b) {
			return fmt.Sprintf("routes[%d] (%s)", i, r.Name)
		}
	}
	if !all && next.Default == b {
		return fmt.Sprintf("the default backend (default: %s)", b)
	}
	return ""
}

// serving lists the routes of next (indexes) that may serve a request of
// match m, and whether they serve all of them (else the default backend
// may serve some). A route of m's shape, for m's method or for every
// method, serves them all; otherwise any route that may match some (a
// wildcard, a parameter of another regexp). With m nil, any route that
// takes writes may serve them.
func serving(next *config.Config, m *config.Match) (routes []int, all bool) {
	if m != nil {
		for _, method := range []string{m.Method, ""} {
			for i := range next.Routes {
				if r := next.Routes[i].Match; r.Method == method && r.Shape() == m.Shape() {
					return []int{i}, true
				}
			}
		}
	}
	for i := range next.Routes {
		if r := next.Routes[i].Match; m == nil && takesWrites(r) || m != nil && r.MayOverlap(*m) {
			routes = append(routes, i)
		}
	}
	return routes, false
}

// takesWrites reports whether a route of match m may serve a write: one
// for any method, or for a method other than GET, HEAD and OPTIONS.
func takesWrites(m config.Match) bool {
	switch m.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// routeNamed is the route of cfg named name; nil if none (or cfg is nil).
func routeNamed(cfg *config.Config, name string) *config.Route {
	if cfg == nil {
		return nil
	}
	for i := range cfg.Routes {
		if cfg.Routes[i].Name == name {
			return &cfg.Routes[i]
		}
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

func hasRoute(cfg *config.Config, name string) bool { return routeNamed(cfg, name) != nil }

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
