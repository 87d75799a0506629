package modern

import (
	"bytes"
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"strangler/patients"
)

// KeyRetention is how long a response to an Idempotency-Key is kept: longer
// than the facade's repair queue keeps retrying a dual-write.
const KeyRetention = 7 * 24 * time.Hour

// Idempotency keeps responses to Idempotency-Keys in PostgreSQL, committed
// in the same transaction as the write they answer: after a crash either
// both are there or neither, so a retry never applies a write twice and
// never replays a response whose write was lost. It is a
// patients.Idempotency.
type Idempotency struct {
	pool  *pgxpool.Pool
	calls atomic.Int64
}

// NewIdempotency returns an Idempotency over pool.
func NewIdempotency(pool *pgxpool.Pool) *Idempotency { return &Idempotency{pool: pool} }

// Once implements patients.Idempotency. Two requests with one key at once
// do not both write: the second waits on the first's uncommitted key row,
// then finds its response.
func (i *Idempotency) Once(ctx context.Context, key string, fp []byte, write func(context.Context) (patients.Response, error)) (patients.Response, error) {
	tx, err := i.pool.Begin(ctx)
	if err != nil {
		return patients.Response{}, fmt.Errorf("idempotency: %w", err)
	}
	defer tx.Rollback(ctx)
	tag, err := tx.Exec(ctx, "INSERT INTO idempotency_keys (key, fingerprint) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING", key, fp)
	if err != nil {
		return patients.Response{}, fmt.Errorf("idempotency: %w", err)
	}
	if tag.RowsAffected() == 0 {
		var stored []byte
		var resp patients.Response
		err := tx.QueryRow(ctx, "SELECT fingerprint, status, location, body FROM idempotency_keys WHERE key = $1", key).
			Scan(&stored, &resp.Status, &resp.Location, &resp.Body)
		if err != nil {
			return patients.Response{}, fmt.Errorf("idempotency: %w", err)
		}
		if !bytes.Equal(stored, fp) {
			return patients.Response{}, patients.ErrKeyReused
		}
		return resp, nil
	}
	resp, err := write(context.WithValue(ctx, txKey{}, tx))
	if err != nil {
		return resp, err
	}
	if _, err := tx.Exec(ctx, "UPDATE idempotency_keys SET status = $2, location = $3, body = $4 WHERE key = $1",
		key, resp.Status, resp.Location, resp.Body); err != nil {
		return patients.Response{}, fmt.Errorf("idempotency: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return patients.Response{}, fmt.Errorf("idempotency: %w", storeError(err))
	}
	// Now and then, forget keys past their retention; the index on
	// created_at makes it cheap.
	if i.calls.Add(1)%1000 == 1 {
		i.pool.Exec(context.WithoutCancel(ctx), "DELETE FROM idempotency_keys WHERE created_at < now() - $1::interval",
			fmt.Sprintf("%d seconds", int(KeyRetention.Seconds())))
	}
	return resp, nil
}
