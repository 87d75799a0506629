package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// APIBackfillRow is what the ledger of a backfill through the modern
// service's API says about one source row sent, or that failed.
type APIBackfillRow struct {
	Key string
	// BodyHash is the keyed hash (phi.Hasher) of the request last sent
	// for the row, IdempotencyKey that request's key; both "" when the
	// row was never sent (refused before sending).
	BodyHash, IdempotencyKey string
	// Status is the API's last HTTP status, 0 when it never answered.
	Status int
	// Reason is a closed set the backfill names (rejected,
	// retries_exhausted); Message the API's own error message.
	Reason, Message string
	// Payload is the request body, its redacted fields hashed.
	Payload string
	// Unreadable, when set, says why Message and Payload are empty: they
	// are encrypted with a key that is no longer configured (it wraps
	// ErrKeyLost). The key, status and reason are intact, so the row can
	// still be sent again.
	Unreadable error
}

// StartAPIBackfill records a run of the given mode under way and returns
// its id.
func (s *Store) StartAPIBackfill(ctx context.Context, mode string) (int64, error) {
	var id int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO strangler_api_backfill_runs (mode, status, started_at, report)
			VALUES ($1, 'running', $2, '{}') RETURNING id`, clean(mode), s.ts(s.clock())).Scan(&id)
	})
	if err != nil {
		return 0, fmt.Errorf("store: start api backfill: %w", err)
	}
	return id, nil
}

// FinishAPIBackfill records how run ended and its report (JSON).
func (s *Store) FinishAPIBackfill(ctx context.Context, run int64, status string, report []byte) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE strangler_api_backfill_runs SET status = $2, finished_at = $3, report = $4 WHERE id = $1`,
			run, status, s.ts(s.clock()), string(report))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: finish api backfill: %w", err)
	}
	return nil
}

// APIBackfillCheckpoint returns the key up to which table's rows were
// all sent by requests of plan (a hash the caller names its table's plan
// by), ok false when none were. A checkpoint recorded for another plan
// is none (ok false, stale true): its rows were read by another key or
// source, or sent as other requests. One recorded before plans were is
// taken as it is.
func (s *Store) APIBackfillCheckpoint(ctx context.Context, table, plan string) (key string, ok, stale bool, err error) {
	err = s.db.QueryRowContext(ctx, "SELECT last_key, coalesce(plan <> $2, false) FROM strangler_api_backfill_checkpoints WHERE table_name = $1",
		table, plan).Scan(&key, &stale)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, false, nil
	case err != nil:
		return "", false, false, fmt.Errorf("store: api backfill checkpoint: %w", err)
	case stale:
		return "", false, true, nil
	}
	return key, true, false, nil
}

// APIBackfillBaseline returns the checkpoint of table written by a
// release that kept no ledger rows of the rows it migrated, ok false when
// there is none (or it was cleared): the rows at or below it that the
// ledger has nothing of were sent by that release.
func (s *Store) APIBackfillBaseline(ctx context.Context, table string) (key string, ok bool, err error) {
	var k sql.NullString
	err = s.db.QueryRowContext(ctx, "SELECT baseline_key FROM strangler_api_backfill_checkpoints WHERE table_name = $1", table).Scan(&k)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("store: api backfill baseline: %w", err)
	}
	return k.String, k.Valid, nil
}

// ClearAPIBackfillBaseline forgets table's baseline checkpoint once every
// row at or below it is in the ledger.
func (s *Store) ClearAPIBackfillBaseline(ctx context.Context, table string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, "UPDATE strangler_api_backfill_checkpoints SET baseline_key = NULL WHERE table_name = $1", table)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: clear api backfill baseline: %w", err)
	}
	return nil
}

// RecordAPIBackfill records, in one transaction, the rows of table that
// run migrated and those that failed, and moves its checkpoint to
// checkpoint, recorded for plan, unless that is nil (rows retried by
// key). A migrated row replaces its earlier failure; of it the ledger
// keeps its key, the hash of the request it went with and that request's
// Idempotency-Key.
func (s *Store) RecordAPIBackfill(ctx context.Context, run int64, table, plan string, migrated []APIBackfillRow, failed []APIBackfillRow, checkpoint *string) error {
	now := s.ts(s.clock())
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := s.recordAPIRows(ctx, tx, run, table, migrated, failed, now); err != nil {
			return err
		}
		if checkpoint == nil {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO strangler_api_backfill_checkpoints (table_name, last_key, updated_at, plan)
			VALUES ($1, $2, $3, $4) ON CONFLICT (table_name) DO UPDATE SET last_key = excluded.last_key, updated_at = excluded.updated_at,
				plan = excluded.plan`,
			table, *checkpoint, now, plan)
		return err
	})
	if err != nil {
		return fmt.Errorf("store: record api backfill of %s: %w", table, err)
	}
	return nil
}

// recordAPIRows records the rows of table that run migrated, in place of
// their earlier failures, and those that failed.
func (s *Store) recordAPIRows(ctx context.Context, tx *sql.Tx, run int64, table string, migrated, failed []APIBackfillRow, now any) error {
	if len(migrated) == 0 && len(failed) == 0 {
		return nil
	}
	const upsert = `INSERT INTO strangler_api_backfill_rows
		(table_name, row_key, state, status, reason, message, payload, sealed, run_id, updated_at, body_hash, idempotency_key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (table_name, row_key) DO UPDATE SET state = excluded.state, status = excluded.status,
			reason = excluded.reason, message = excluded.message, payload = excluded.payload, sealed = excluded.sealed,
			run_id = excluded.run_id, updated_at = excluded.updated_at,
			body_hash = excluded.body_hash, idempotency_key = excluded.idempotency_key`
	stmt, err := tx.PrepareContext(ctx, upsert)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, m := range migrated {
		if _, err := stmt.ExecContext(ctx, table, m.Key, "migrated", m.Status, "", "", "", false, run, now,
			m.BodyHash, m.IdempotencyKey); err != nil {
			return err
		}
	}
	for _, f := range failed {
		msg := f.Message
		if len(msg) > maxReason {
			msg = msg[:maxReason] // clean mends a rune cut in half
		}
		msg, payload, sealed := s.sealAPIRow(table, f.Key, clean(msg), clean(f.Payload))
		if _, err := stmt.ExecContext(ctx, table, f.Key, "failed", f.Status, f.Reason, msg, payload, sealed, run, now,
			f.BodyHash, f.IdempotencyKey); err != nil {
			return err
		}
	}
	return nil
}

// APIBackfillSent is what the ledger says was last sent for one row.
type APIBackfillSent struct {
	// BodyHash and IdempotencyKey are those of the request last sent;
	// "" when the row was never sent.
	BodyHash, IdempotencyKey string
	// Migrated is true when the API accepted it; else Reason says why
	// the row failed.
	Migrated bool
	Reason   string
	// Run is the run that recorded it last.
	Run int64
}

// APIBackfillSentRows returns what the ledger has of table's rows with
// the given keys, by key; keys it has nothing of are absent.
func (s *Store) APIBackfillSentRows(ctx context.Context, table string, keys []string) (map[string]APIBackfillSent, error) {
	out := make(map[string]APIBackfillSent, len(keys))
	const page = 500
	for len(keys) > 0 {
		n := min(page, len(keys))
		args := []any{table}
		var in strings.Builder
		for i, k := range keys[:n] {
			if i > 0 {
				in.WriteString(", ")
			}
			args = append(args, k)
			fmt.Fprintf(&in, "$%d", len(args))
		}
		keys = keys[n:]
		rows, err := s.db.QueryContext(ctx, `SELECT row_key, state, reason, body_hash, idempotency_key, run_id FROM strangler_api_backfill_rows
			WHERE table_name = $1 AND row_key IN (`+in.String()+`)`, args...)
		if err != nil {
			return nil, fmt.Errorf("store: api backfill rows sent: %w", err)
		}
		for rows.Next() {
			var k, state string
			var r APIBackfillSent
			if err := rows.Scan(&k, &state, &r.Reason, &r.BodyHash, &r.IdempotencyKey, &r.Run); err != nil {
				rows.Close()
				return nil, fmt.Errorf("store: api backfill rows sent: %w", err)
			}
			r.Migrated = state == "migrated"
			out[k] = r
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("store: api backfill rows sent: %w", err)
		}
	}
	return out, nil
}

// APIBackfillSentCount counts table's rows the ledger records as sent
// (a hash kept), migrated or not.
func (s *Store) APIBackfillSentCount(ctx context.Context, table string) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM strangler_api_backfill_rows WHERE table_name = $1 AND body_hash <> ''`, table).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("store: api backfill rows sent: %w", err)
	}
	return n, nil
}

// APIBackfillFailures returns up to limit failed rows of table whose keys
// sort after after ("" for the first page), in key order as the store
// sorts text. A row whose message and payload cannot be decrypted comes
// with Unreadable set, not as an error: it must not hold up the others.
func (s *Store) APIBackfillFailures(ctx context.Context, table, after string, limit int) ([]APIBackfillRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT row_key, status, reason, message, payload, sealed FROM strangler_api_backfill_rows
		WHERE table_name = $1 AND state = 'failed' AND row_key > $2 ORDER BY row_key LIMIT $3`, table, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: api backfill failures: %w", err)
	}
	defer rows.Close()
	var out []APIBackfillRow
	for rows.Next() {
		var r APIBackfillRow
		var sealed bool
		if err := rows.Scan(&r.Key, &r.Status, &r.Reason, &r.Message, &r.Payload, &sealed); err != nil {
			return nil, fmt.Errorf("store: api backfill failures: %w", err)
		}
		r.Message, r.Payload, r.Unreadable = s.openAPIRow(table, r.Key, r.Message, r.Payload, sealed)
		out = append(out, r)
	}
	return out, rows.Err()
}
