package store

import (
	"context"
	"errors"
	"testing"
	"time"

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

