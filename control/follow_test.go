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
// the re-read's interval, not by how fast the flip arrived: a replica
// that re-reads once an hour, or one that hears no notification at all.
func TestReplicasFollowFlipsOnTheNotification(t *testing.T) {
	t.Parallel()
	// followEvery follows as serve does, re-reading every resync.
	followEvery := func(t *testing.T, b *plane, resync time.Duration) {
		t.Helper()
		b.flags.resyncEvery = resync
		follow(t, b.flags)
	}
	// flip flips route to mode on a (one that needs no gate and no
	// approval) and waits until b's router has it.
	flip := func(t *testing.T, a, b *plane, route string, mode domain.Mode) {
		t.Helper()
		if got := b.mode(route); got == mode {
			t.Fatalf("%s on the other replica before the flip: already %s", route, got)
		}
		if resp, body := a.patch(t, route, bobToken, `{"mode": "`+string(mode)+`", "reason": "replicas"}`); resp.StatusCode != http.StatusOK {
			t.Fatalf("flipping %s to %s: got %d %v, want 200", route, mode, resp.StatusCode, body)
		}
		// Generous: nothing else could apply it within the test.
		testkit.Eventually(t, 30*time.Second, "the other replica serves the flip of "+route, func() bool {
			return b.mode(route) == mode
		})
	}

	t.Run("a flip is applied on its notification", func(t *testing.T) {
		dsn := testdb.Postgres(t)
		a, b := newPlaneWith(t, planeOptions{dsn: dsn}), newPlaneWith(t, planeOptions{dsn: dsn})
		followEvery(t, b, time.Hour)
		flip(t, a, b, "get-patient", domain.ModeLegacy)
	})

	t.Run("a flip whose notification is lost is caught by the re-read", func(t *testing.T) {
		dsn := testdb.Postgres(t)
		a, b := newPlaneWith(t, planeOptions{dsn: dsn}), newPlaneWith(t, planeOptions{dsn: dsn})
		b.flags.store = deaf{b.store}
		followEvery(t, b, 10*time.Millisecond)
		flip(t, a, b, "get-patient", domain.ModeLegacy)
	})

	t.Run("after the store's connections drop, flips are applied on their notification again", func(t *testing.T) {
		dsn := testdb.Postgres(t)
		proxy, proxied := testdb.NewProxy(t, dsn)
		a, b := newPlaneWith(t, planeOptions{dsn: dsn}), newPlaneWith(t, planeOptions{dsn: proxied})
		followEvery(t, b, time.Hour)
		proxy.Reset() // as a server restart or a failover does
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("the other replica's log:\n%s", b.logs.text())
			}
		})
		// Applied once b listens again: on its notification, or, made
		// before that, at the re-read b does on listening again.
		flip(t, a, b, "get-patient", domain.ModeLegacy)
		// b listens again: only a notification can apply this one.
		flip(t, a, b, "create-patient", domain.ModeShadow)
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
