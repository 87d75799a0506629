package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"strangler/internal/testdb"
)

// TestASessionLastsItsIdleTimeWhateverTheReplicasClocks: replicas share
// one PostgreSQL store, and two have clocks nine hours off, one ahead and
// one behind. A status page login on any replica works on every other
// at once, and a session unused for longer than its idle time (8 h on the
// server's clock) is refused by every replica, the one behind included.
func TestASessionLastsItsIdleTimeWhateverTheReplicasClocks(t *testing.T) {
	ctx := context.Background()
	const idle = 8 * time.Hour
	dsn := testdb.Postgres(t)
	right, ahead, behind := openStore(t, dsn, nil), openStore(t, dsn, nil), openStore(t, dsn, nil)
	ahead.now = func() time.Time { return time.Now().Add(9 * time.Hour) }
	behind.now = func() time.Time { return time.Now().Add(-9 * time.Hour) }
	replicas := map[string]*Store{"right": right, "ahead": ahead, "behind": behind}
	for _, login := range []string{"right", "ahead", "behind"} {
		id := "login-on-" + login
		s := replicas[login]
		if err := s.CreateSession(ctx, Session{ID: id, Actor: "alice", Binding: "b"}, s.clock(), idle); err != nil {
			t.Fatal(err)
		}
		for _, next := range []string{"right", "ahead", "behind"} {
			r := replicas[next]
			if _, err := r.UseSession(ctx, id, r.clock(), idle); err != nil {
				t.Errorf("logged in on the replica %s, the next request on the replica %s: %v", login, next, err)
			}
		}
	}
	// A session left eight hours and a minute unused, on the server's clock.
	if err := right.CreateSession(ctx, Session{ID: "idle", Actor: "alice", Binding: "b"}, right.clock(), idle); err != nil {
		t.Fatal(err)
	}
	if _, err := right.db.ExecContext(ctx, `UPDATE strangler_sessions SET last_seen = now() - interval '8 hours 1 minute' WHERE id = 'idle'`); err != nil {
		t.Fatal(err)
	}
	for name, r := range replicas {
		if _, err := r.UseSession(ctx, "idle", r.clock(), idle); !errors.Is(err, ErrNotFound) {
			t.Errorf("8 h 1 min unused, the replica %s took the session (%v), want it ended", name, err)
		}
	}
}
