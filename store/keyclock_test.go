package store

import (
	"context"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testdb"
)

// TestAKeyIsRememberedADayWhateverTheReplicasClocks: replicas share one
// PostgreSQL store, and one's clock is two days off (a machine that
// booted before NTP set it). A key another replica remembered a moment
// ago must still be known a moment later, whichever of them writes it
// and whichever sweeps: a forgotten key journals the client's retry a
// second time, and the secondary gets the write twice under two
// Idempotency-Keys. Keys are stamped, and swept, on the server's clock.
func TestAKeyIsRememberedADayWhateverTheReplicasClocks(t *testing.T) {
	ctx := context.Background()
	for _, off := range []time.Duration{48 * time.Hour, -48 * time.Hour} {
		t.Run(off.String(), func(t *testing.T) {
			dsn := testdb.Postgres(t)
			wrong, right := openStore(t, dsn, nil), openStore(t, dsn, nil)
			wrong.now = func() time.Time { return time.Now().Add(off) }
			for _, c := range []struct {
				name              string
				remembers, purges *Store
			}{
				{"remembered by the replica whose clock is off", wrong, right},
				{"swept by the replica whose clock is off", right, wrong},
			} {
				key := domain.NewIdempotencyKey(c.name, "PUT", "/patients/42", []byte(`{"a":1}`))
				first := c.name[:8] + "-1"
				if got := begin(t, c.remembers, first, key); got.Use != domain.KeyJournaled {
					t.Fatalf("%s: first use %+v, want journaled", c.name, got)
				}
				if err := c.remembers.RecordOutcome(ctx, first, domain.Outcome{Status: 201}); err != nil {
					t.Fatal(err)
				}
				if _, err := c.purges.PurgeRepairs(ctx, 7*24*time.Hour); err != nil {
					t.Fatal(err)
				}
				if got := begin(t, c.remembers, c.name[:8]+"-2", key); got.Use == domain.KeyJournaled {
					t.Errorf("%s, a retry a moment later was journaled again (%+v): the key was forgotten", c.name, got)
				}
			}
		})
	}
}
