package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// KeyTTL is how long a client's Idempotency-Key is remembered after it
// last started a write; PurgeRepairs forgets older keys.
const KeyTTL = 24 * time.Hour

// IdempotencyKey is a client's Idempotency-Key on a dual write and the
// request it came with, as the store compares them: SHA-256 hashes, which
// the store keeps only as keyed digests (phi), so that neither the key
// (free text a client chose) nor the request is kept outside the journal,
// and a guess (an MRN sent as a key, a short body) cannot be tested
// against what is kept without the store's hash key.
type IdempotencyKey struct {
	// Key is the hash of the client's key.
	Key string
	// Fingerprint is the hash of the request's method, target and body:
	// the same key with another fingerprint is another request.
	Fingerprint string
}

// NewIdempotencyKey hashes a client's key and the request it came with.
// Two requests are the same when their methods, targets (canonical path
// and query, as forwarded) and bodies are byte for byte the same.
func NewIdempotencyKey(key, method, target string, body []byte) IdempotencyKey {
	k := sha256.Sum256([]byte(key))
	h := sha256.New()
	// Neither a method nor a request target can hold a NUL byte, so the
	// fields cannot run into each other.
	h.Write([]byte(method))
	h.Write([]byte{0})
	h.Write([]byte(target))
	h.Write([]byte{0})
	h.Write(body)
	return IdempotencyKey{Key: hex.EncodeToString(k[:]), Fingerprint: hex.EncodeToString(h.Sum(nil))}
}

// KeyUse is what BeginKeyedWrite made of a write sent with a key.
type KeyUse int

const (
	// KeyJournaled: the write is journaled under the key, as sent: the
	// key's first use, or a retry of a write the primary did not apply.
	KeyJournaled KeyUse = iota + 1
	// KeyResumed: the key names a write whose primary outcome was lost
	// (unknown); it is sent again under its own journal entry, which is
	// sent once more, and the primary's answer to this retry settles it.
	KeyResumed
	// KeyApplied: the primary applied the key's write; the retry goes to
	// the primary (which may replay its answer) and is journaled no
	// second time.
	KeyApplied
	// KeyInFlight: the key's write is with the primary now.
	KeyInFlight
	// KeyReused: the key names another request (method, target or body).
	KeyReused
	// KeyMoved: the primary applied the key's write, or may have, and the
	// route's primary has changed since: the new primary has the write
	// from the journal (or will) under another key, and would apply a
	// retry again.
	KeyMoved
)

func (u KeyUse) String() string {
	switch u {
	case KeyJournaled:
		return "journaled"
	case KeyResumed:
		return "resumed"
	case KeyApplied:
		return "applied"
	case KeyInFlight:
		return "in flight"
	case KeyReused:
		return "reused"
	case KeyMoved:
		return "moved"
	}
	return fmt.Sprintf("KeyUse(%d)", int(u))
}

// KeyedWrite is what BeginKeyedWrite did.
type KeyedWrite struct {
	Use KeyUse
	// ID is the journal entry whose outcome the caller records: the new
	// one (KeyJournaled) or the earlier one (KeyResumed); "" otherwise.
	ID string
}

// BeginKeyedWrite is BeginWrite for a write a client named with an
// Idempotency-Key. In one transaction it remembers the key and journals
// in, or finds what the key named before and acts on it (see KeyUse).
// The key and the journal entry are written together or not at all: a
// crash leaves neither a key naming no write nor a write its key's
// retries cannot find.
func (s *Store) BeginKeyedWrite(ctx context.Context, in Intent, k IdempotencyKey, leaseUntil time.Time) (KeyedWrite, error) {
	if err := in.validate(); err != nil {
		return KeyedWrite{}, fmt.Errorf("store: begin keyed write: %w", err)
	}
	if !s.hasher.Ready() {
		return KeyedWrite{}, fmt.Errorf("store: begin keyed write: %w", errNoHashKey)
	}
	k = IdempotencyKey{
		Key:         s.hasher.Digest("idempotency-key", k.Key),
		Fingerprint: s.hasher.Digest("idempotency-request", k.Fingerprint),
	}
	var out KeyedWrite
	err := s.write(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.beginKeyed(ctx, tx, in, k, leaseUntil)
		return err
	})
	if err != nil {
		return KeyedWrite{}, fmt.Errorf("store: begin keyed write %s: %w", in.ID, err)
	}
	return out, nil
}

func (s *Store) beginKeyed(ctx context.Context, tx *sql.Tx, in Intent, k IdempotencyKey, leaseUntil time.Time) (KeyedWrite, error) {
	now := s.ts(s.clock())
	// Insert first: on PostgreSQL a concurrent first use of the key waits
	// here until the other commits, then finds its row.
	res, err := tx.ExecContext(ctx, `
		INSERT INTO strangler_idempotency_keys (key, fingerprint, intent_id, at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (key) DO NOTHING`, k.Key, k.Fingerprint, in.ID, now)
	if err != nil {
		return KeyedWrite{}, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return KeyedWrite{}, err
	} else if n == 1 {
		return KeyedWrite{Use: KeyJournaled, ID: in.ID}, s.insertIntent(ctx, tx, in, leaseUntil)
	}

	var fingerprint, prior string
	var w priorWrite
	err = tx.QueryRowContext(ctx, `
		SELECT k.fingerprint, k.intent_id, r.state, r.status, r.primary_side
		FROM strangler_idempotency_keys k LEFT JOIN strangler_repairs r ON r.id = k.intent_id
		WHERE k.key = $1`, k.Key).Scan(&fingerprint, &prior, &w.state, &w.status, &w.primary)
	if errors.Is(err, sql.ErrNoRows) {
		// Forgotten between the insert and the read: let the client retry.
		return KeyedWrite{}, fmt.Errorf("idempotency key forgotten while it was read: %w", ErrConflict)
	} else if err != nil {
		return KeyedWrite{}, err
	}
	if fingerprint != k.Fingerprint {
		return KeyedWrite{Use: KeyReused}, nil
	}
	switch use := retryUse(w, in.Primary); use {
	case KeyJournaled:
		// Taken over only if no other retry took it first.
		res, err := tx.ExecContext(ctx, `
			UPDATE strangler_idempotency_keys SET intent_id = $3, at = $4
			WHERE key = $1 AND intent_id = $2`, k.Key, prior, in.ID, now)
		if n, err := rowsChanged(res, err); err != nil || n == 0 {
			return KeyedWrite{Use: KeyInFlight}, err
		}
		return KeyedWrite{Use: KeyJournaled, ID: in.ID}, s.insertIntent(ctx, tx, in, leaseUntil)
	case KeyResumed:
		res, err := tx.ExecContext(ctx, `
			UPDATE strangler_repairs SET state = 'sent', lease_until = $2, updated_at = $3
			WHERE id = $1 AND state = 'unknown'`, prior, s.ts(leaseUntil), now)
		if n, err := rowsChanged(res, err); err != nil || n == 0 {
			return KeyedWrite{Use: KeyInFlight}, err
		}
		_, err = tx.ExecContext(ctx, `UPDATE strangler_idempotency_keys SET at = $2 WHERE key = $1`, k.Key, now)
		return KeyedWrite{Use: KeyResumed, ID: prior}, err
	default:
		return KeyedWrite{Use: use}, nil
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
func retryUse(w priorWrite, primary string) KeyUse {
	st := State(w.state.String)
	applied := w.status.Valid && w.status.Int64 >= 200 && w.status.Int64 <= 299
	switch {
	case !w.state.Valid, st == StateSkipped, st == StateDiscarded && !applied:
		// Skipped: the primary refused it or never got it. Discarded
		// without a 2xx: an operator gave up on an unknown outcome.
		return KeyJournaled
	case st == StateSent:
		return KeyInFlight
	case w.primary.String != primary:
		return KeyMoved
	case st == StateUnknown:
		return KeyResumed
	}
	// Pending, done or dead, or discarded after the primary applied it.
	return KeyApplied
}

// rowsChanged is the number of rows an Exec changed.
func rowsChanged(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
