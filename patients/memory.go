package patients

import (
	"bytes"
	"cmp"
	"context"
	"io"
	"slices"
	"sync"
)

// MemoryStore keeps patients and photos in memory, for the demo. It is a
// Store and a PhotoStore.
type MemoryStore struct {
	mu        sync.Mutex
	rows      map[int64]Patient
	next      int64
	photos    map[int64]memoryPhoto
	nextPhoto int64
}

type memoryPhoto struct {
	Photo
	data []byte
}

// NewMemoryStore returns a store holding the synthetic patients 1…n that
// gives new patients and photos ids from firstNew on.
func NewMemoryStore(n, firstNew int64) *MemoryStore {
	s := &MemoryStore{
		rows: make(map[int64]Patient, n), next: firstNew,
		photos: map[int64]memoryPhoto{}, nextPhoto: firstNew,
	}
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
	slices.SortFunc(out, func(a, b Patient) int { return cmp.Compare(a.ID, b.ID) })
	return out[:min(limit, len(out))], nil
}

// Create implements Store.
func (s *MemoryStore) Create(_ context.Context, p Patient) (Patient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.ID == 0 {
		p.ID = s.next
		s.next++
	} else if _, taken := s.rows[p.ID]; taken {
		return Patient{}, ErrConflict
	}
	if s.mrnTaken(p) {
		return Patient{}, ErrConflict
	}
	p.MRNs = sortedMRNs(p.MRNs)
	s.rows[p.ID] = p
	return p, nil
}

// mrnTaken reports whether another patient holds one of p's MRNs.
func (s *MemoryStore) mrnTaken(p Patient) bool {
	for _, q := range s.rows {
		if q.ID == p.ID {
			continue
		}
		for _, m := range q.MRNs {
			if slices.Contains(p.MRNs, m) {
				return true
			}
		}
	}
	return false
}

// Update implements Store.
func (s *MemoryStore) Update(_ context.Context, p Patient) (Patient, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.rows[p.ID]
	if !ok {
		return Patient{}, ErrNotFound
	}
	if p.MRNs == nil {
		p.MRNs = old.MRNs
	}
	if s.mrnTaken(p) {
		return Patient{}, ErrConflict
	}
	p.MRNs = sortedMRNs(p.MRNs)
	s.rows[p.ID] = p
	return p, nil
}

// Delete implements Store; the patient's photos go too.
func (s *MemoryStore) Delete(_ context.Context, id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rows[id]; !ok {
		return ErrNotFound
	}
	delete(s.rows, id)
	for pid, ph := range s.photos {
		if ph.PatientID == id {
			delete(s.photos, pid)
		}
	}
	return nil
}

// AddPhoto implements PhotoStore.
func (s *MemoryStore) AddPhoto(_ context.Context, ph Photo, data []byte) (Photo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rows[ph.PatientID]; !ok {
		return Photo{}, ErrNotFound
	}
	if ph.ID == 0 {
		ph.ID = s.nextPhoto
		s.nextPhoto++
	} else if _, taken := s.photos[ph.ID]; taken {
		return Photo{}, ErrConflict
	}
	ph.Size = int64(len(data))
	s.photos[ph.ID] = memoryPhoto{ph, bytes.Clone(data)}
	return ph, nil
}

// Photos implements PhotoStore.
func (s *MemoryStore) Photos(_ context.Context, patientID int64) ([]Photo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.rows[patientID]; !ok {
		return nil, ErrNotFound
	}
	var out []Photo
	for _, ph := range s.photos {
		if ph.PatientID == patientID {
			out = append(out, ph.Photo)
		}
	}
	slices.SortFunc(out, func(a, b Photo) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// OpenPhoto implements PhotoStore.
func (s *MemoryStore) OpenPhoto(_ context.Context, id int64) (Photo, io.ReadCloser, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ph, ok := s.photos[id]
	if !ok {
		return Photo{}, nil, ErrPhotoNotFound
	}
	return ph.Photo, io.NopCloser(bytes.NewReader(ph.data)), nil
}

// sortedMRNs orders MRNs by site, as every store returns them.
func sortedMRNs(ms []MRN) []MRN {
	if ms == nil {
		return nil
	}
	ms = slices.Clone(ms)
	slices.SortFunc(ms, func(a, b MRN) int { return cmp.Or(cmp.Compare(a.Site, b.Site), cmp.Compare(a.MRN, b.MRN)) })
	return ms
}

// MemoryIdempotency remembers responses to Idempotency-Keys in memory, for
// the demo: it forgets them when the process ends.
type MemoryIdempotency struct {
	// mu is held while a write runs, so two requests with one key cannot
	// both run it; the demo's write rate makes one lock enough.
	mu   sync.Mutex
	kept map[string]keptResponse
}

type keptResponse struct {
	fingerprint []byte
	resp        Response
}

// NewMemoryIdempotency returns an empty MemoryIdempotency.
func NewMemoryIdempotency() *MemoryIdempotency {
	return &MemoryIdempotency{kept: map[string]keptResponse{}}
}

// Once implements Idempotency.
func (m *MemoryIdempotency) Once(ctx context.Context, key string, fp []byte, write func(context.Context) (Response, error)) (Response, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.kept[key]; ok {
		if !bytes.Equal(k.fingerprint, fp) {
			return Response{}, ErrKeyReused
		}
		return k.resp, nil
	}
	resp, err := write(ctx)
	if err != nil {
		return resp, err
	}
	m.kept[key] = keptResponse{bytes.Clone(fp), resp}
	return resp, nil
}
