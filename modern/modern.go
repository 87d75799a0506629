// Package modern is the modern side of a migration as the demo and the
// end-to-end tests run it: the reference patients API over the new
// service's data, in memory for the demo or in PostgreSQL (see
// migrations/).
//
// Ids. Every modern table has an internal id, from an identity starting at
// NativeIDBase, and a legacy_id for rows that came from legacy, by backfill
// or dual-write. The id the API shows (the public id) is legacy_id when
// there is one and the internal id otherwise. So a patient copied or
// dual-written from legacy has the same id on both sides, and a patient
// created here gets an id of 10^12 or more, which legacy's INT keys never
// reach: the two can never collide. Foreign keys inside modern use internal
// ids; the backfill translates legacy foreign keys with a lookup through
// legacy_id.
//
// Writes. POST /patients and POST /patients/{id}/photos carrying
// X-Strangler-Primary-Id (the facade sends it to a dual-write secondary)
// store the row with that legacy_id. Writes carrying an Idempotency-Key
// apply once: the response is stored with the write, in one transaction,
// and replayed for a retry with the same key, even after a restart; the
// same key with a different request is 422. Only 2xx answers are kept, so
// a write refused because, say, its patient was not there yet can be
// retried with its key.
package modern

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"strangler/internal/dsn"
	"strangler/patients"
)

// DemoPatients is how many patients the demo's modern backend holds: fewer
// than legacy, so that reading a later one visibly falls back.
const DemoPatients = 60

// NativeIDBase is the first id of a row created in modern rather than
// copied from legacy.
const NativeIDBase = 1_000_000_000_000

// NewDemo returns the modern reference API over an in-memory store holding
// patients 1…DemoPatients, as if copied from legacy.
func NewDemo(log *slog.Logger) http.Handler {
	s := patients.NewMemoryStore(DemoPatients, NativeIDBase)
	return patients.NewAPI(patients.Backend{
		Patients: s, Photos: s, Idempotency: patients.NewMemoryIdempotency(), KeepPrimaryID: true,
	}, log)
}

// New returns the modern reference API over pool, a database Open returned.
func New(pool *pgxpool.Pool, log *slog.Logger) http.Handler {
	s := NewStore(pool)
	return patients.NewAPI(patients.Backend{
		Patients: s, Photos: s, Idempotency: NewIdempotency(pool), KeepPrimaryID: true,
	}, log)
}

// Open connects to the modern database, a postgres:// URL, and migrates
// its schema.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("modern database: %w", dsn.RedactError(err, url))
	}
	cfg.MaxConns = 20
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("modern database: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("modern database: %w", err)
	}
	if err := Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// Seed gives an empty modern database the synthetic patients 1…n as if
// copied from legacy (legacy_id = id); a database with patients is left
// alone.
func Seed(ctx context.Context, pool *pgxpool.Pool, n int64) error {
	var have bool
	if err := pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM patients)").Scan(&have); err != nil {
		return fmt.Errorf("modern seed: %w", err)
	}
	if have {
		return nil
	}
	s := NewStore(pool)
	for id := int64(1); id <= n; id++ {
		if _, err := s.Create(ctx, patients.Synthetic(id)); err != nil {
			return fmt.Errorf("modern seed: %w", err)
		}
	}
	return nil
}
