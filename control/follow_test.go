package control

import (
	"context"
	"net/http"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// TestReplicasFollowFlipsOnTheNotification: a replica applies a flip
// made on another when the store notifies it (PostgreSQL LISTEN/NOTIFY),
// not only at its periodic re-read; and when a notification is lost, the
// re-read catches the flip. Which of the two applied it is told apart by
// the re-read's interval, not by how fast the flip arrived: the first
// case re-reads once an hour, the second hears no notification at all.
func TestReplicasFollowFlipsOnTheNotification(t *testing.T) {
	t.Parallel()
	// follow runs b's Flags as serve does, re-reading every resync, until
	// the test ends, and returns once b listens for flips.
	follow := func(t *testing.T, b *plane, resync time.Duration) {
		t.Helper()
		b.flags.resyncEvery = resync
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- b.flags.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			<-done
		})
		<-b.flags.Watching()
	}
	// flip rolls get-patient back to legacy on a (a rollback: no gate, no
	// approval) and waits until b's router has it.
	flip := func(t *testing.T, a, b *plane) {
		t.Helper()
		if b.mode("get-patient") != domain.ModeFallback {
			t.Fatalf("get-patient on the other replica before the flip: got %s, want the file's fallback", b.mode("get-patient"))
		}
		if resp, body := a.patch(t, "get-patient", bobToken, `{"mode": "legacy", "reason": "replicas"}`); resp.StatusCode != http.StatusOK {
			t.Fatalf("flipping get-patient to legacy: got %d %v, want 200", resp.StatusCode, body)
		}
		// Generous: nothing else could apply it within the test.
		testkit.Eventually(t, 30*time.Second, "the other replica serves the flip", func() bool {
			return b.mode("get-patient") == domain.ModeLegacy
		})
	}

	t.Run("a flip is applied on its notification", func(t *testing.T) {
		dsn := testdb.Postgres(t)
		a, b := newPlaneWith(t, planeOptions{dsn: dsn}), newPlaneWith(t, planeOptions{dsn: dsn})
		follow(t, b, time.Hour)
		flip(t, a, b)
	})

	t.Run("a flip whose notification is lost is caught by the re-read", func(t *testing.T) {
		dsn := testdb.Postgres(t)
		a, b := newPlaneWith(t, planeOptions{dsn: dsn}), newPlaneWith(t, planeOptions{dsn: dsn})
		b.flags.store = deaf{b.store}
		follow(t, b, 10*time.Millisecond)
		flip(t, a, b)
	})
}

// deaf is a flag store whose notifications are all lost: its Watch
// listens, and never tells.
type deaf struct{ FlagStore }

func (d deaf) Watch(ctx context.Context) (<-chan struct{}, error) {
	if _, err := d.FlagStore.Watch(ctx); err != nil {
		return nil, err
	}
	return make(chan struct{}), nil
}
