package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testdb"
)

// skewed opens dsn as a replica whose clock is off from the server's,
// once it measured that (as its counts flush does every few seconds).
func skewed(t *testing.T, dsn string, off time.Duration) *Store {
	t.Helper()
	s := openStore(t, dsn, nil)
	s.now = func() time.Time { return time.Now().Add(off) }
	if _, err := s.ClockOffset(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFinishedWritesArePurgedAfterRepairsKeepWhateverTheReplicasClocks:
// replicas share one PostgreSQL store and one's clock is three days off.
// A write finished a moment ago must outlive a purge keeping a day,
// whichever replica finished it and whichever purges; one finished two
// days ago must not. As it was, a replica three days ahead purged every
// write at once (and stamped its own finished writes to stay three days
// longer), one three days behind kept them three days too long (and
// stamped its own as purged at once).
func TestFinishedWritesArePurgedAfterRepairsKeepWhateverTheReplicasClocks(t *testing.T) {
	ctx := context.Background()
	for _, off := range []time.Duration{72 * time.Hour, -72 * time.Hour} {
		t.Run(off.String(), func(t *testing.T) {
			dsn := testdb.Postgres(t)
			wrong, right := skewed(t, dsn, off), openStore(t, dsn, nil)
			for i, c := range []struct {
				name             string
				finishes, purges *Store
			}{
				{"finished by the replica whose clock is off", wrong, right},
				{"purged by the replica whose clock is off", right, wrong},
			} {
				id := []string{"finished-off", "purged-off"}[i]
				journalStatus(t, c.finishes, nil, id, "update-patient/"+id, 500) // skipped: finished
				if _, err := c.purges.PurgeRepairs(ctx, 24*time.Hour); err != nil {
					t.Fatal(err)
				}
				if _, err := c.purges.GetRepair(ctx, id, false); err != nil {
					t.Errorf("%s: a write finished a moment ago, after a purge keeping a day: %v; want it kept", c.name, err)
					continue
				}
				if _, err := right.db.ExecContext(ctx, `UPDATE strangler_repairs SET updated_at = updated_at - interval '2 days' WHERE id = $1`, id); err != nil {
					t.Fatal(err)
				}
				if _, err := c.purges.PurgeRepairs(ctx, 24*time.Hour); err != nil {
					t.Fatal(err)
				}
				if _, err := c.purges.GetRepair(ctx, id, false); !errors.Is(err, ErrNotFound) {
					t.Errorf("%s: a write finished two days ago, after a purge keeping a day: %v; want it purged", c.name, err)
				}
			}
		})
	}
}

// TestARemovedRoutesLeftoversAgeOnTheStoresClock: replicas share one
// PostgreSQL store and one's clock is two hours off. What a replica
// learned for a route a moment ago (a replica still serving the older
// configuration, during a rolling change) must outlive a purge of what
// went an hour unwritten, on the store's clock; what it learned two
// hours ago must not. As it was, a replica two hours behind stamped what
// it learned as two hours old (deleted while it still served the route),
// one two hours ahead as two hours to come (kept two hours too long).
func TestARemovedRoutesLeftoversAgeOnTheStoresClock(t *testing.T) {
	ctx := context.Background()
	for _, off := range []time.Duration{2 * time.Hour, -2 * time.Hour} {
		t.Run(off.String(), func(t *testing.T) {
			dsn := testdb.Postgres(t)
			wrong, right := skewed(t, dsn, off), openStore(t, dsn, nil)
			for i, c := range []struct {
				name           string
				learns, purges *Store
			}{
				{"learned by the replica whose clock is off", wrong, right},
				{"purged by the replica whose clock is off", right, wrong},
			} {
				route := []string{"learned-off", "purged-off"}[i]
				if err := c.learns.MergeSchema(ctx, route, "GET", 200, func([]byte) ([]byte, error) { return []byte(`{}`), nil }); err != nil {
					t.Fatal(err)
				}
				if err := c.learns.AddSample(ctx, route, c.learns.now(), []byte(`{"diffs":[]}`), 100); err != nil {
					t.Fatal(err)
				}
				if err := c.learns.AddNoise(ctx, route, "etag"); err != nil {
					t.Fatal(err)
				}
				purge := func() []Leftovers {
					t.Helper()
					// An hour before now on the store's clock, as the
					// leader's purge asks (control.CountsPurger).
					notSince := c.purges.now().Add(c.purges.LastClockOffset()).Add(-time.Hour)
					purged, err := c.purges.PurgeRemovedRoutes(ctx, nil, notSince, func(l Leftovers) domain.AuditEntry {
						return domain.AuditEntry{Actor: "config", Action: "route_data_purged", Route: l.Route}
					})
					if err != nil {
						t.Fatal(err)
					}
					return purged
				}
				if purged := purge(); len(purged) != 0 {
					t.Errorf("%s: a purge of what went an hour unwritten deleted %+v, learned a moment ago", c.name, purged)
					continue
				}
				for _, q := range []string{
					`UPDATE strangler_schemas SET updated_at = updated_at - interval '2 hours' WHERE route = $1`,
					`UPDATE strangler_samples SET at = at - interval '2 hours' WHERE route = $1`,
					`UPDATE strangler_noise SET added_at = added_at - interval '2 hours' WHERE route = $1`,
				} {
					if _, err := right.db.ExecContext(ctx, q, route); err != nil {
						t.Fatal(err)
					}
				}
				if purged := purge(); len(purged) != 1 || purged[0] != (Leftovers{Route: route, Schemas: 1, Samples: 1, Noise: 1}) {
					t.Errorf("%s: a purge of what went an hour unwritten deleted %+v, want all the route learned two hours ago", c.name, purged)
				}
			}
		})
	}
}
