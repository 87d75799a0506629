package shadow

import (
	"cmp"
	"context"
	"slices"
	"sync"
)

// MemorySamples is a SampleStore in memory, keeping the newest samples of
// each route. It is safe for concurrent use.
type MemorySamples struct {
	perRoute int

	mu     sync.Mutex
	routes map[string]*ring
	// seq orders samples across routes by arrival, whatever their At.
	seq uint64
}

// ring holds the newest samples of one route; next is where the next one
// goes.
type ring struct {
	items []stored
	next  int
}

type stored struct {
	seq    uint64
	sample Sample
}

// NewMemorySamples returns a store keeping the newest perRoute samples of
// each route (at least one).
func NewMemorySamples(perRoute int) *MemorySamples {
	return &MemorySamples{perRoute: max(perRoute, 1), routes: map[string]*ring{}}
}

// Add stores s, dropping its route's oldest sample when the route is full.
func (m *MemorySamples) Add(_ context.Context, s Sample) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.routes[s.Route]
	if r == nil {
		r = &ring{}
		m.routes[s.Route] = r
	}
	m.seq++
	item := stored{seq: m.seq, sample: s}
	if len(r.items) < m.perRoute {
		r.items = append(r.items, item)
		return nil
	}
	r.items[r.next] = item
	r.next = (r.next + 1) % m.perRoute
	return nil
}

// List returns up to limit samples of route, newest first; all routes for
// route "", and every sample for a limit of 0 or less.
func (m *MemorySamples) List(_ context.Context, route string, limit int) ([]Sample, error) {
	m.mu.Lock()
	var items []stored
	for name, r := range m.routes {
		if route == "" || name == route {
			items = append(items, r.items...)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(items, func(a, b stored) int { return cmp.Compare(b.seq, a.seq) })
	if limit > 0 && len(items) > limit {
		items = items[:limit]
	}
	out := make([]Sample, len(items))
	for i, it := range items {
		out[i] = it.sample
	}
	return out, nil
}
