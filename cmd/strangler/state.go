package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"strangler/backfill"
	"strangler/config"
	"strangler/internal/dsn"
	"strangler/shadow"
	"strangler/store"
)

// samplesPerRoute bounds the shadow mismatch samples kept per route.
const samplesPerRoute = 100

// storeSamples keeps shadow mismatch samples in the state store, as JSON.
type storeSamples struct{ s *store.Store }

func (a storeSamples) Add(ctx context.Context, smp shadow.Sample) error {
	b, err := json.Marshal(smp)
	if err != nil {
		return err
	}
	return a.s.AddSample(ctx, smp.Route, smp.At, b, samplesPerRoute)
}

func (a storeSamples) List(ctx context.Context, route string, limit int) ([]shadow.Sample, error) {
	rows, err := a.s.Samples(ctx, route, limit)
	if err != nil {
		return nil, err
	}
	out := make([]shadow.Sample, 0, len(rows))
	for _, r := range rows {
		if r.Err != nil {
			out = append(out, shadow.Sample{Route: r.Route, At: r.At, Unreadable: r.Err.Error()})
			continue
		}
		var smp shadow.Sample
		if err := json.Unmarshal(r.Data, &smp); err != nil {
			return nil, fmt.Errorf("stored sample %d: %w", r.ID, err)
		}
		out = append(out, smp)
	}
	return out, nil
}

// storeSchemas are the learned response schemas as every replica
// flushed them to the state store, this one's latest included.
type storeSchemas struct {
	s  *shadow.Schemas
	st *store.Store
}

func (a storeSchemas) Stored(ctx context.Context, route string) ([]*shadow.Schema, error) {
	return a.s.Stored(ctx, a.st, route)
}

// storeRepairKeys hands the keys the facade's read repair queued to the
// backfill: the route's entity names the backfill table.
type storeRepairKeys struct{ s *store.Store }

// repairKeysPage is how many queued keys the backfill takes at a time.
const repairKeysPage = 1000

func (k storeRepairKeys) Pending(ctx context.Context, table string) ([]string, error) {
	return k.s.PendingRepairKeys(ctx, table, repairKeysPage)
}

func (k storeRepairKeys) Done(ctx context.Context, table string, keys []string) error {
	return k.s.DoneRepairKeys(ctx, table, keys)
}

// readRepairKeys opens the facade's state store for the backfill to drain
// its read-repair queue. A SQLite file that does not exist yet holds no
// keys: it is not created (the backfill may run where the facade does
// not), and the backfill runs without a queue.
func readRepairKeys(ctx context.Context, cfg *config.Config, log *slog.Logger) (backfill.RepairKeys, func(), error) {
	if path, _, ok := dsn.SQLite(string(cfg.Store)); ok {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			log.Info("no state store file; no read-repair keys to copy", "store", path)
			return nil, func() {}, nil
		}
	}
	st, err := store.Open(ctx, string(cfg.Store), log, store.WithEncryption(cfg.EncryptionKeys()))
	if err != nil {
		return nil, nil, fmt.Errorf("state store (for read-repair keys): %w", err)
	}
	return storeRepairKeys{st}, func() { st.Close() }, nil
}
