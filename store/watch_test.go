package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"strangler/domain"
	"strangler/internal/testdb"
)

// waitSignal fails the test unless ch receives within d.
func waitSignal(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case _, ok := <-ch:
		if !ok {
			t.Fatalf("%s: the watch channel closed", what)
		}
	case <-time.After(d):
		t.Fatalf("%s: no signal within %v", what, d)
	}
}

// noSignal fails the test if ch receives within d.
func noSignal(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Errorf("%s: got a signal, want none", what)
	case <-time.After(d):
	}
}

func TestWatchAcrossReplicas(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A unique application_name lets the test find this store's LISTEN
	// connection among everyone else's on the server.
	name := make([]byte, 6)
	rand.Read(name)
	appName := "strangler-watch-test-" + hex.EncodeToString(name)
	u, err := url.Parse(testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("application_name", appName)
	u.RawQuery = q.Encode()
	dsn := u.String()
	writer, watcher := openStore(t, dsn, nil), openStore(t, dsn, nil)
	ch, err := watcher.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// The waits below are generous: a loaded machine under -race can take
	// seconds to deliver a notification, and the store has no poll that
	// could deliver one NOTIFY did not (the facade's one second is
	// measured end to end, in cmd/strangler's TestReplicasFollowFlips).
	t.Run("a flip committed on one replica reaches another", func(t *testing.T) {
		if _, err := writer.SetOverride(ctx, domain.Override{Route: "r", Mode: "modern"}, 0, flip("r", "legacy", "modern")); err != nil {
			t.Fatal(err)
		}
		waitSignal(t, ch, 10*time.Second, "after SetOverride")
		if _, _, err := writer.ClearOverride(ctx, "r", 1, domain.AuditEntry{Action: "clear", Route: "r"}); err != nil {
			t.Fatal(err)
		}
		waitSignal(t, ch, 10*time.Second, "after ClearOverride")
	})

	t.Run("a refused flip announces nothing", func(t *testing.T) {
		if _, err := writer.SetOverride(ctx, domain.Override{Route: "r", Mode: "modern"}, 7, flip("r", "legacy", "modern")); err == nil {
			t.Fatal("got no conflict")
		}
		noSignal(t, ch, 200*time.Millisecond, "after a conflict")
	})

	t.Run("a flip in another schema is not this store's business", func(t *testing.T) {
		other := openStore(t, testdb.Postgres(t), nil)
		if _, err := other.SetOverride(ctx, domain.Override{Route: "r", Mode: "modern"}, 0, flip("r", "legacy", "modern")); err != nil {
			t.Fatal(err)
		}
		noSignal(t, ch, 200*time.Millisecond, "after a flip in another schema")
	})

	t.Run("the watcher reconnects after losing its connection and says so", func(t *testing.T) {
		admin, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close(ctx)
		var killed int
		err = admin.QueryRow(ctx, `
			SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE application_name = $1 AND query LIKE 'LISTEN %' AND pid <> pg_backend_pid()`, appName).Scan(&killed)
		if err != nil {
			t.Fatal(err)
		}
		if killed != 1 {
			t.Fatalf("terminated %d LISTEN connections, want 1", killed)
		}
		waitSignal(t, ch, 20*time.Second, "after reconnecting")
		// At 2: the flip made it 1, the clear 2.
		if _, err := writer.SetOverride(ctx, domain.Override{Route: "r", Mode: "shadow"}, 2, flip("r", "legacy", "shadow")); err != nil {
			t.Fatal(err)
		}
		waitSignal(t, ch, 10*time.Second, "a flip after reconnecting")
	})

	t.Run("the channel closes with the store", func(t *testing.T) {
		if err := watcher.Close(); err != nil {
			t.Fatal(err)
		}
		select {
		case _, ok := <-ch:
			if ok {
				// A signal may have been waiting; the close follows.
				if _, ok := <-ch; ok {
					t.Error("got a second signal, want the channel closed")
				}
			}
		case <-time.After(10 * time.Second):
			t.Error("the channel is still open 10 s after Close")
		}
		if _, err := watcher.Watch(ctx); err == nil {
			t.Error("Watch on a closed store gave no error")
		}
	})
}

func TestWatchOnSQLiteNeverFires(t *testing.T) {
	t.Parallel()
	s := newStore(t, backends()[0], nil)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := s.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetOverride(ctx, domain.Override{Route: "r", Mode: "modern"}, 0, flip("r", "legacy", "modern")); err != nil {
		t.Fatal(err)
	}
	noSignal(t, ch, 100*time.Millisecond, "after SetOverride on SQLite")
	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Error("got a signal, want the channel closed")
		}
	case <-time.After(10 * time.Second):
		t.Error("the channel is still open 10 s after its context ended")
	}
}
