package router

import (
	"net/http"
	"sync"
	"time"
)

// staleLogEvery is how often, at most, a route's writes served on route
// flags not known to be current are logged: an outage of the state store
// sends every write of the route so, and one line a minute says how many.
const staleLogEvery = time.Minute

// followed reports whether a write the table would send straight to a
// backend, unjournaled, may go as the route flags serving say
// (Deps.Follows, which reads them again first when they are not known to
// be current and the store answers). A table swapped in meanwhile routes
// the write anew (reroute) and followed reports false, having served it.
// Flags still not current (this replica is cut off from the store, or the
// read did not come within its bound) serve the write all the same,
// counted in strangler_stale_flags_writes_total and logged: refusing it
// would make an outage of the facade's store an outage of every write
// of the API, and a backfill or verify catches what the other side
// missed. See control.Flags.Follows.
func (t *Table) followed(x *exchange, req *http.Request) bool {
	follows := t.owner.deps.Follows
	if follows == nil {
		return true
	}
	current, readAt := follows(req.Context())
	if cur := t.owner.table.Load(); cur != t && !x.decidedAgain {
		x.decidedAgain = true
		cur.reroute(x, req)
		return false
	}
	if !current {
		t.staleWrite(x.route.name, req.Method, readAt)
	}
	return true
}

// staleWrite counts a write of route served on route flags read at readAt
// (zero: never read from the store) and logs it, paced by route.
func (t *Table) staleWrite(route, method string, readAt time.Time) {
	if m := t.owner.deps.Metrics; m != nil {
		m.staleWrites.WithLabelValues(route).Inc()
	}
	writes, log := t.owner.stale.note(route, t.owner.deps.Now())
	if !log {
		return
	}
	flagsRead := "never"
	if !readAt.IsZero() {
		flagsRead = readAt.UTC().Format(time.RFC3339)
	}
	t.owner.deps.Log.Warn("writes sent straight to a backend on route flags this replica could not read from the state store within the last second; if another replica moved the route into dual-write meanwhile, the other side lacks them: backfill or verify the route",
		"route", route, "method", method, "writes", writes, "flags_read_at", flagsRead)
}

// staleWrites paces the log of writes served on route flags not known
// to be current: one line per route per staleLogEvery, saying how many
// such writes came since the last.
type staleWrites struct {
	mu     sync.Mutex
	routes map[string]*staleRoute
}

// staleRoute is one route's writes not logged yet, and when it was
// last logged.
type staleRoute struct {
	unlogged int
	logged   time.Time
}

// note counts a write of route at now and reports whether to log a line
// now, and for how many writes.
func (s *staleWrites) note(route string, now time.Time) (writes int, log bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.routes[route]
	if r == nil {
		if s.routes == nil {
			s.routes = map[string]*staleRoute{}
		}
		r = &staleRoute{}
		s.routes[route] = r
	}
	r.unlogged++
	if !r.logged.IsZero() && now.Sub(r.logged) < staleLogEvery {
		return 0, false
	}
	writes, r.unlogged, r.logged = r.unlogged, 0, now
	return writes, true
}
