package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"strangler/domain"
)

// KeyTTL is how long a client's Idempotency-Key is remembered after it
// last started a write; PurgeRepairs forgets older keys.
const KeyTTL = 24 * time.Hour

// BeginKeyedWrite is BeginWrite for a write a client named with an
// Idempotency-Key. In one transaction it remembers the key and journals
// in, or finds what the key named before and acts on it (see KeyUse).
// The key and the journal entry are written together or not at all: a
// crash leaves neither a key naming no write nor a write its key's
// retries cannot find.
func (s *Store) BeginKeyedWrite(ctx context.Context, in domain.Intent, k domain.IdempotencyKey, lease time.Duration) (domain.KeyedWrite, error) {
	if err := validateIntent(in); err != nil {
		return domain.KeyedWrite{}, fmt.Errorf("store: begin keyed write: %w", err)
	}
	if !s.hasher.Ready() {
		return domain.KeyedWrite{}, fmt.Errorf("store: begin keyed write: %w", errNoHashKey)
	}
	if err := s.room(ctx, int64(len(in.Body))); err != nil {
		return domain.KeyedWrite{}, fmt.Errorf("store: begin keyed write %s: %w", in.ID, err)
	}
	k = domain.IdempotencyKey{
		Key:         s.hasher.Digest("idempotency-key", k.Key),
		Fingerprint: s.hasher.Digest("idempotency-request", k.Fingerprint),
	}
	var out domain.KeyedWrite
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.beginKeyed(ctx, tx, in, k, lease)
		return err
	})
	if err != nil {
		return domain.KeyedWrite{}, fmt.Errorf("store: begin keyed write %s: %w", in.ID, err)
	}
	return out, nil
}

func (s *Store) beginKeyed(ctx context.Context, tx *sql.Tx, in domain.Intent, k domain.IdempotencyKey, lease time.Duration) (domain.KeyedWrite, error) {
	now := s.ts(s.clock())
	// A key is stamped, and swept (PurgeRepairs), on the lease clock: the
	// server's on PostgreSQL, so that a replica whose clock is a day off
	// neither stamps keys the others sweep at once nor sweeps theirs.
	at, atArg := s.leaseAt(4, 0)
	// Insert first: on PostgreSQL a concurrent first use of the key waits
	// here until the other commits, then finds its row.
	res, err := tx.ExecContext(ctx, `
		INSERT INTO strangler_idempotency_keys (key, fingerprint, intent_id, at)
		VALUES ($1, $2, $3, `+at+`)
		ON CONFLICT (key) DO NOTHING`, k.Key, k.Fingerprint, in.ID, atArg)
	if err != nil {
		return domain.KeyedWrite{}, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return domain.KeyedWrite{}, err
	} else if n == 1 {
		return domain.KeyedWrite{Use: domain.KeyJournaled, ID: in.ID}, s.insertIntent(ctx, tx, in, lease)
	}

	var fingerprint, prior string
	var w priorWrite
	err = tx.QueryRowContext(ctx, `
		SELECT k.fingerprint, k.intent_id, r.state, r.status, r.primary_side
		FROM strangler_idempotency_keys k LEFT JOIN strangler_repairs r ON r.id = k.intent_id
		WHERE k.key = $1`, k.Key).Scan(&fingerprint, &prior, &w.state, &w.status, &w.primary)
	if errors.Is(err, sql.ErrNoRows) {
		// Forgotten between the insert and the read: let the client retry.
		return domain.KeyedWrite{}, fmt.Errorf("idempotency key forgotten while it was read: %w", ErrConflict)
	} else if err != nil {
		return domain.KeyedWrite{}, err
	}
	if fingerprint != k.Fingerprint {
		return domain.KeyedWrite{Use: domain.KeyReused}, nil
	}
	switch use := retryUse(w, in.Primary); use {
	case domain.KeyJournaled:
		// Taken over only if no other retry took it first.
		res, err := tx.ExecContext(ctx, `
			UPDATE strangler_idempotency_keys SET intent_id = $3, at = `+at+`
			WHERE key = $1 AND intent_id = $2`, k.Key, prior, in.ID, atArg)
		if n, err := rowsChanged(res, err); err != nil || n == 0 {
			return domain.KeyedWrite{Use: domain.KeyInFlight}, err
		}
		return domain.KeyedWrite{Use: domain.KeyJournaled, ID: in.ID}, s.insertIntent(ctx, tx, in, lease)
	case domain.KeyResumed:
		until, untilArg := s.leaseAt(2, lease)
		// A write marked unknown may have held its resource's turn
		// (TakeTurn): sent again, it takes the turn again, in its order.
		res, err := tx.ExecContext(ctx, `
			UPDATE strangler_repairs SET `+moveResume.set()+`, turn = false, attempts = 0, lease_until = `+until+`, updated_at = $3
			WHERE id = $1 AND `+moveResume.where(), prior, untilArg, now)
		if n, err := rowsChanged(res, err); err != nil || n == 0 {
			return domain.KeyedWrite{Use: domain.KeyInFlight}, err
		}
		at, atArg := s.leaseAt(2, 0)
		_, err = tx.ExecContext(ctx, `UPDATE strangler_idempotency_keys SET at = `+at+` WHERE key = $1`, k.Key, atArg)
		return domain.KeyedWrite{Use: domain.KeyResumed, ID: prior}, err
	default:
		return domain.KeyedWrite{Use: use}, nil
	}
}

// priorWrite is what a remembered key's journal entry says; all NULL when
// it is gone.
type priorWrite struct {
	state   sql.NullString
	status  sql.NullInt64
	primary sql.NullString
}

// retryUse decides what a retry with a remembered key does, from the
// write the key names and the route's primary now. What matters is
// whether the primary applied that write: if it did, the secondary gets
// it from that journal entry and the retry must not be journaled again;
// if it did not, the retry is a new write, which the secondary must get
// if the primary applies it now; if nobody knows, the retry's answer
// tells. Either of the last two needs the same primary as before.
func retryUse(w priorWrite, primary domain.Backend) domain.KeyUse {
	st := domain.State(w.state.String)
	applied := w.status.Valid && w.status.Int64 >= 200 && w.status.Int64 <= 299
	switch {
	case !w.state.Valid, st == domain.StateSkipped, st == domain.StateDiscarded && !applied:
		// Skipped: the primary refused it or never got it. Discarded
		// without a 2xx: an operator gave up on an unknown outcome.
		return domain.KeyJournaled
	case st == domain.StateSent:
		return domain.KeyInFlight
	case w.primary.String != string(primary):
		return domain.KeyMoved
	case st == domain.StateUnknown:
		return domain.KeyResumed
	}
	// Pending, done or dead, or discarded after the primary applied it.
	return domain.KeyApplied
}

// rowsChanged is the number of rows an Exec changed.
func rowsChanged(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
