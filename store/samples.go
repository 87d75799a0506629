package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"strangler/domain"
)

// Sample is one stored shadow mismatch.
type Sample struct {
	ID    int64
	Route string
	At    time.Time
	// Data is the sample as the shadow package wrote it (JSON). On
	// PostgreSQL it comes back normalised (key order, spacing), equal in
	// meaning, not byte for byte. It is nil when Err is set.
	Data json.RawMessage
	// Err says why the sample cannot be read: it was encrypted with a key
	// that is no longer configured (ErrKeyLost).
	Err error
}

// AddSample stores a mismatch sample (JSON) for route, encrypted when the
// store has keys, then drops the route's oldest samples beyond keep. at,
// when it was taken by this replica's clock, is kept on the store's (see
// clock): the newest samples are kept whichever replica took them, and
// a removed route's last one ages on the clock PurgeRemovedRoutes reads.
func (s *Store) AddSample(ctx context.Context, route string, at time.Time, sample []byte, keep int) error {
	if !json.Valid(sample) {
		return fmt.Errorf("store: add sample for %s: sample is not valid JSON", route)
	}
	if keep <= 0 {
		return fmt.Errorf("store: add sample for %s: keep %d is not positive", route, keep)
	}
	route = clean(route)
	data, sealed := string(sample), false
	if s.keys != nil {
		// Still JSON, so that PostgreSQL's jsonb column takes it: a string.
		b, _ := json.Marshal(s.keys.sealText(sampleAAD(route), data))
		data, sealed = string(b), true
	}
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		// Replicas adding samples to one route take turns, so none sees a
		// count that another's uncommitted insert is about to change.
		if err := s.lock(ctx, tx, lockSamples, route); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `
			INSERT INTO strangler_samples (route, at, sample, sealed) VALUES ($1, $2, $3, $4)`,
			route, s.ts(at.Add(s.LastClockOffset())), data, sealed); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `
			DELETE FROM strangler_samples
			WHERE route = $1 AND id NOT IN (
				SELECT id FROM strangler_samples WHERE route = $1
				ORDER BY at DESC, id DESC LIMIT $2)`, route, keep)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: add sample for %s: %w", route, err)
	}
	return nil
}

// Samples returns up to limit samples of route ("" for every route),
// newest first.
func (s *Store) Samples(ctx context.Context, route string, limit int) ([]Sample, error) {
	q := `SELECT id, route, at, sample, sealed FROM strangler_samples`
	args := []any{}
	if route != "" {
		q += ` WHERE route = $1`
		args = append(args, route)
	}
	args = append(args, limitOr(limit, 100, 1000))
	q += fmt.Sprintf(` ORDER BY at DESC, id DESC LIMIT $%d`, len(args))
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: samples: %w", err)
	}
	defer rows.Close()
	var out []Sample
	for rows.Next() {
		var sm Sample
		var data []byte
		var sealed bool
		if err := rows.Scan(&sm.ID, &sm.Route, scanTime(&sm.At), &data, &sealed); err != nil {
			return nil, fmt.Errorf("store: samples: %w", err)
		}
		sm.Data, sm.Err = s.openSample(sm.Route, data, sealed)
		out = append(out, sm)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: samples: %w", err)
	}
	return out, nil
}

// AddNoise records path as noise on route. Adding it again changes
// nothing.
func (s *Store) AddNoise(ctx context.Context, route, path string) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO strangler_noise (route, path, added_at) VALUES ($1, $2, $3)
		ON CONFLICT (route, path) DO NOTHING`, clean(route), clean(path), s.ts(s.clock()))
	if err != nil {
		return fmt.Errorf("store: add noise %s on %s: %w", path, route, err)
	}
	return nil
}

// Noise returns the fields learned to be noise on route ("" for every
// route), by route and path.
func (s *Store) Noise(ctx context.Context, route string) ([]domain.NoiseField, error) {
	q := `SELECT route, path, added_at FROM strangler_noise`
	var args []any
	if route != "" {
		q += ` WHERE route = $1`
		args = append(args, route)
	}
	rows, err := s.db.QueryContext(ctx, q+` ORDER BY route, path`, args...)
	if err != nil {
		return nil, fmt.Errorf("store: noise: %w", err)
	}
	defer rows.Close()
	var out []domain.NoiseField
	for rows.Next() {
		var n domain.NoiseField
		if err := rows.Scan(&n.Route, &n.Path, scanTime(&n.AddedAt)); err != nil {
			return nil, fmt.Errorf("store: noise: %w", err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: noise: %w", err)
	}
	return out, nil
}

func sampleAAD(route string) string { return "strangler_samples.sample/" + route }

// openSample is the inverse of AddSample's encryption.
func (s *Store) openSample(route string, data []byte, sealed bool) (json.RawMessage, error) {
	if !sealed {
		return data, nil
	}
	var text string
	if err := json.Unmarshal(data, &text); err != nil {
		return nil, fmt.Errorf("sample of %s: not an encrypted sample: %w", route, err)
	}
	plain, err := s.keys.openText(sampleAAD(route), text)
	if err != nil {
		return nil, fmt.Errorf("sample of %s cannot be read: %w", route, err)
	}
	return json.RawMessage(plain), nil
}
