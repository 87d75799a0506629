package shadow

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// SchemaStore keeps learned schemas for every replica. The state store
// implements it.
type SchemaStore interface {
	// MergeSchema stores merge(stored) as the schema of route, method and
	// status, stored being nil when there is none yet, atomically: other
	// replicas' merges of the same schema wait for it.
	MergeSchema(ctx context.Context, route, method string, status int, merge func(stored []byte) ([]byte, error)) error
	// LoadSchemas returns the stored schemas of route ("" for every route).
	LoadSchemas(ctx context.Context, route string) ([][]byte, error)
}

// Flush adds what every route learned and found since the last flush to
// the store, and takes back what the other replicas added meanwhile. What
// a failed flush could not add is kept for the next one.
func (s *Schemas) Flush(ctx context.Context, st SchemaStore) error {
	var errs []error
	for _, l := range s.all() {
		if err := l.flush(ctx, st); err != nil {
			errs = append(errs, fmt.Errorf("route %s: %w", l.route, err))
		}
	}
	return errors.Join(errs...)
}

func (l *SchemaLearner) flush(ctx context.Context, st SchemaStore) error {
	l.mu.Lock()
	pending := l.delta
	l.delta = map[SchemaKey]*Schema{}
	slots := len(l.params.slots)
	l.mu.Unlock()
	keys := make([]SchemaKey, 0, len(pending))
	for k := range pending {
		keys = append(keys, k)
	}
	// One order for every replica, so two flushes never wait on each other
	// in opposite orders.
	slices.SortFunc(keys, func(a, b SchemaKey) int {
		return cmp.Or(cmp.Compare(a.Method, b.Method), cmp.Compare(a.Status, b.Status))
	})
	for i, key := range keys {
		d := pending[key]
		var merged *Schema
		var held *Shape
		err := st.MergeSchema(ctx, l.route, key.Method, key.Status, func(stored []byte) ([]byte, error) {
			merged = newSchema(l.route, key)
			if stored != nil {
				// A stored schema this release cannot read is learned
				// again rather than left to block every flush.
				if s, err := UnmarshalSchema(stored); err == nil {
					merged = s
				}
			}
			before := merged.Root.clone()
			merged.merge(d)
			held = merged.Root.withhold(before, d.Root, slots)
			merged.pruneDrift()
			return MarshalSchema(merged)
		})
		if err != nil {
			l.restore(keys[i:], pending)
			return err
		}
		l.mu.Lock()
		if held != nil {
			// The keys of places that have not settled wait in the delta.
			h := newSchema(l.route, key)
			h.Root = held
			if cur := l.delta[key]; cur != nil {
				h.merge(cur)
			}
			l.delta[key] = h
		}
		k := merged.clone()
		if cur := l.delta[key]; cur != nil {
			k.merge(cur)
		}
		l.known[key] = k
		l.mu.Unlock()
	}
	return nil
}

// restore gives back the deltas of keys that were not flushed.
func (l *SchemaLearner) restore(keys []SchemaKey, pending map[SchemaKey]*Schema) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, key := range keys {
		d := pending[key]
		if cur := l.delta[key]; cur != nil {
			d.merge(cur)
		}
		l.delta[key] = d
	}
}

// loadRetry is how long a learner waits before trying to load its
// schemas again after the store failed.
const loadRetry = time.Minute

// Load makes the store's schemas of the route what this replica checks
// against, once: after a restart, or on another replica, modern's
// answers are checked from the first one. Later, each flush brings the
// other replicas' learning in. Calls after a failure return at once
// until loadRetry has passed, so a store that is down is not asked on
// every answer.
func (l *SchemaLearner) Load(ctx context.Context, st SchemaStore, now time.Time) error {
	l.mu.Lock()
	skip := l.loaded || now.Sub(l.tried) < loadRetry
	if !skip {
		l.tried = now
	}
	l.mu.Unlock()
	if skip {
		return nil
	}
	docs, err := st.LoadSchemas(ctx, l.route)
	if err != nil {
		return err
	}
	stored, err := decodeSchemas(docs)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range stored {
		key := s.Key()
		if l.known[key] == nil && len(l.known) >= maxSchemaKeys {
			continue
		}
		if d := l.delta[key]; d != nil {
			s.merge(d)
		}
		l.known[key] = s
	}
	l.loaded = true
	return err
}

// Stored flushes this replica's learning and returns route's schemas as
// every replica learned them ("" for every route), by route, method and
// status.
func (s *Schemas) Stored(ctx context.Context, st SchemaStore, route string) ([]*Schema, error) {
	if err := s.Flush(ctx, st); err != nil {
		return nil, err
	}
	docs, err := st.LoadSchemas(ctx, route)
	if err != nil {
		return nil, err
	}
	out, err := decodeSchemas(docs)
	slices.SortFunc(out, func(a, b *Schema) int {
		return cmp.Or(cmp.Compare(a.Route, b.Route), cmp.Compare(a.Method, b.Method), cmp.Compare(a.Status, b.Status))
	})
	return out, err
}

// decodeSchemas decodes stored documents, skipping (and reporting) those
// this release cannot read.
func decodeSchemas(docs [][]byte) ([]*Schema, error) {
	var out []*Schema
	var errs []error
	for _, doc := range docs {
		s, err := UnmarshalSchema(doc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}
