package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
)

// AddRepairKey queues key of entity for the backfill: a fallback found it
// in legacy but not in modern. A key already pending is not added twice.
func (s *Store) AddRepairKey(ctx context.Context, entity, key string) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO strangler_repair_keys (entity, key, added_at) VALUES ($1, $2, $3)
		ON CONFLICT (entity, key) DO NOTHING`, clean(entity), clean(key), s.ts(s.clock()))
	if err != nil {
		return fmt.Errorf("store: add repair key for %s: %w", entity, err)
	}
	return nil
}

// PendingRepairKeys returns up to limit keys of entity waiting for the
// backfill, oldest first.
func (s *Store) PendingRepairKeys(ctx context.Context, entity string, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT key FROM strangler_repair_keys WHERE entity = $1
		ORDER BY added_at, key LIMIT $2`, entity, limitOr(limit, 1000, 100000))
	if err != nil {
		return nil, fmt.Errorf("store: pending repair keys for %s: %w", entity, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, fmt.Errorf("store: pending repair keys for %s: %w", entity, err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: pending repair keys for %s: %w", entity, err)
	}
	return out, nil
}

// DoneRepairKeys removes keys of entity from the queue once the backfill
// copied them. A key a later fallback queues again is pending again.
func (s *Store) DoneRepairKeys(ctx context.Context, entity string, keys []string) error {
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `DELETE FROM strangler_repair_keys WHERE entity = $1 AND key = $2`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		// Sorted, so two replicas finishing overlapping keys lock them in
		// the same order and cannot deadlock.
		sorted := make([]string, len(keys))
		for i, k := range keys {
			sorted[i] = clean(k)
		}
		slices.Sort(sorted)
		for _, k := range sorted {
			if _, err := stmt.ExecContext(ctx, clean(entity), k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: done repair keys for %s: %w", entity, err)
	}
	return nil
}

// CountRepairKeys returns how many keys of entity wait for the backfill.
func (s *Store) CountRepairKeys(ctx context.Context, entity string) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM strangler_repair_keys WHERE entity = $1`, clean(entity)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: count repair keys for %s: %w", entity, err)
	}
	return n, nil
}
