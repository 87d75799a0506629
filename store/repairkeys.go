package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
)

// AddRepairKey queues key of entity for the backfill: a fallback found it
// in legacy but not in modern. A key already pending is not added twice.
// With store_encryption the key, often a patient's record number, is kept
// only encrypted, and its keyed digest stands in for it in the table's
// primary key.
func (s *Store) AddRepairKey(ctx context.Context, entity, key string) error {
	entity, key = clean(entity), clean(key)
	stored, sealed := key, ""
	if s.keys != nil {
		stored = s.repairKeyDigest(key)
		sealed = s.keys.sealText(repairKeyAAD(entity, stored), key)
	}
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO strangler_repair_keys (entity, key, sealed_key, added_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (entity, key) DO NOTHING`, entity, stored, sealed, s.ts(s.clock()))
	if err != nil {
		return fmt.Errorf("store: add repair key for %s: %w", entity, err)
	}
	return nil
}

func (s *Store) repairKeyDigest(key string) string { return s.hasher.Digest("repair-key", key) }

func repairKeyAAD(entity, stored string) string {
	return "strangler_repair_keys.sealed_key/" + entity + "/" + stored
}

// PendingRepairKeys returns up to limit keys of entity waiting for the
// backfill, oldest first. A key encrypted with a key that is no longer
// configured is dropped from the queue, and the log says so: the backfill
// copies that row in its full run anyway.
func (s *Store) PendingRepairKeys(ctx context.Context, entity string, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `
		SELECT key, sealed_key FROM strangler_repair_keys WHERE entity = $1
		ORDER BY added_at, key LIMIT $2`, entity, limitOr(limit, 1000, 100000))
	if err != nil {
		return nil, fmt.Errorf("store: pending repair keys for %s: %w", entity, err)
	}
	defer rows.Close()
	var out, lost []string
	for rows.Next() {
		var stored, sealed string
		if err := rows.Scan(&stored, &sealed); err != nil {
			return nil, fmt.Errorf("store: pending repair keys for %s: %w", entity, err)
		}
		if sealed == "" {
			out = append(out, stored)
			continue
		}
		key, err := s.keys.openText(repairKeyAAD(entity, stored), sealed)
		if err != nil {
			s.log.Warn("a queued read-repair key cannot be read and is dropped; the backfill copies its row in a full run", "entity", entity, "error", err)
			lost = append(lost, stored)
			continue
		}
		out = append(out, key)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: pending repair keys for %s: %w", entity, err)
	}
	rows.Close()
	if err := s.deleteRepairKeys(ctx, entity, lost); err != nil {
		return nil, fmt.Errorf("store: pending repair keys for %s: %w", entity, err)
	}
	return out, nil
}

// DoneRepairKeys removes keys of entity from the queue once the backfill
// copied them. A key a later fallback queues again is pending again.
func (s *Store) DoneRepairKeys(ctx context.Context, entity string, keys []string) error {
	// Each key may be queued in clear (before store_encryption) and as
	// its digest.
	stored := make([]string, 0, 2*len(keys))
	for _, k := range keys {
		stored = append(stored, clean(k), s.repairKeyDigest(clean(k)))
	}
	if err := s.deleteRepairKeys(ctx, entity, stored); err != nil {
		return fmt.Errorf("store: done repair keys for %s: %w", entity, err)
	}
	return nil
}

// deleteRepairKeys removes the rows of entity whose key column is one of
// stored.
func (s *Store) deleteRepairKeys(ctx context.Context, entity string, stored []string) error {
	if len(stored) == 0 {
		return nil
	}
	return inTx(ctx, s.db, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `DELETE FROM strangler_repair_keys WHERE entity = $1 AND key = $2`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		// Sorted, so two replicas finishing overlapping keys lock them in
		// the same order and cannot deadlock.
		sorted := slices.Clone(stored)
		slices.Sort(sorted)
		for _, k := range slices.Compact(sorted) {
			if _, err := stmt.ExecContext(ctx, clean(entity), k); err != nil {
				return err
			}
		}
		return nil
	})
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
