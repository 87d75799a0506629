package patients

import (
	"context"
	"slices"
	"sync"
)

// MemoryStore keeps patients in memory, for the demo.
type MemoryStore struct {
	mu   sync.Mutex
	rows map[int64]Patient
	next int64
}

// NewMemoryStore returns a store holding the synthetic patients 1…n.
func NewMemoryStore(n int64) *MemoryStore {
	s := &MemoryStore{rows: make(map[int64]Patient, n), next: n + 1}
	for id := int64(1); id <= n; id++ {
		s.rows[id] = Synthetic(id)
	}
	return s
}

// Get implements Store.
func (s *MemoryStore) Get(_ context.Context, id int64) (Patient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.rows[id]
	if !ok {
		return Patient{}, ErrNotFound
	}
	return p, nil
}

// List implements Store.
func (s *MemoryStore) List(_ context.Context, after int64, limit int) ([]Patient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Patient
	for _, p := range s.rows {
		if p.ID > after {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b Patient) int { return int(a.ID - b.ID) })
	return out[:min(limit, len(out))], nil
}

// Create implements Store.
func (s *MemoryStore) Create(_ context.Context, p Patient) (Patient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.ID = s.next
	s.next++
	s.rows[p.ID] = p
	return p, nil
}

// Update implements Store.
func (s *MemoryStore) Update(_ context.Context, p Patient) (Patient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rows[p.ID]; !ok {
		return Patient{}, ErrNotFound
	}
	s.rows[p.ID] = p
	return p, nil
}

// Delete implements Store.
func (s *MemoryStore) Delete(_ context.Context, id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rows[id]; !ok {
		return ErrNotFound
	}
	delete(s.rows, id)
	return nil
}
