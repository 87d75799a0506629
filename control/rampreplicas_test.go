package control

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"strangler/internal/testdb"
)

// TestOneReplicaDrivesTheRampsAndAnotherTakesOver runs two replicas of
// the control plane on one PostgreSQL schema and one clock: one of them
// holds the ramps' lease and takes the steps; when it dies, the other
// takes over once the lease lapses, and when that one stops it hands the
// lease over at once. Every step is taken once.
func TestOneReplicaDrivesTheRampsAndAnotherTakesOver(t *testing.T) {
	dsn := testdb.Postgres(t)
	c := &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	a := newPlaneWith(t, planeOptions{dsn: dsn, clock: c})
	b := newPlaneWith(t, planeOptions{dsn: dsn, clock: c})
	ctx := context.Background()
	a.atZero(t)
	b.flags.resync(ctx)
	a.startRamp(t, "get-patient", `{"steps": [1, 5, 25, 50, 100], "every": "30m"}`)

	a.rollouts.Check(ctx)
	b.rollouts.Check(ctx)
	if !a.rollouts.leading || b.rollouts.leading {
		t.Fatalf("leading: a %v, b %v; want a alone", a.rollouts.leading, b.rollouts.leading)
	}
	if got, want := a.served("get-patient"), "fallback 1%"; got != want {
		t.Fatalf("the first step: got %s, want %s", got, want)
	}

	// a dies: it takes no more rounds, and its lease lapses; b takes it
	// over at its first try after that.
	c.Advance(leaseTTL - time.Second)
	b.rollouts.Check(ctx)
	if b.rollouts.leading {
		t.Fatal("b took the lease before it lapsed")
	}
	// The lease runs on the server's clock: it lapses there.
	lapseLeases(t, dsn)
	c.Advance(leaseRenew) // b tries again every leaseRenew
	b.rollouts.Check(ctx)
	if !b.rollouts.leading {
		t.Fatal("b did not take the lease a let lapse")
	}
	c.Advance(30 * time.Minute)
	b.rollouts.Check(ctx)
	if got, want := b.served("get-patient"), "fallback 5%"; got != want {
		t.Fatalf("the second step, by b: got %s, want %s", got, want)
	}
	a.rollouts.Check(ctx) // a comes back, as a follower
	if a.rollouts.leading {
		t.Error("a took the lease back from b")
	}

	// b stops: it gives the lease up, and a takes it at its next try.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- b.rollouts.Run(runCtx) }()
	stop()
	<-done
	c.Advance(leaseRenew)
	a.rollouts.Check(ctx)
	if !a.rollouts.leading {
		t.Fatal("a did not take the lease b gave up")
	}
	c.Advance(30 * time.Minute)
	a.rollouts.Check(ctx)
	b.rollouts.Check(ctx)
	if got, want := a.served("get-patient"), "fallback 25%"; got != want {
		t.Fatalf("the third step, by a again: got %s, want %s", got, want)
	}
	want := []string{"flip fallback at 0% → fallback at 1%", "flip fallback at 1% → fallback at 5%", "flip fallback at 5% → fallback at 25%"}
	if got := a.rampEntries(t, "get-patient"); !slices.Equal(got, want) {
		t.Errorf("the ramp's entries: got %q, want %q", got, want)
	}
}

// lapseLeases ends every named lease in the store at dsn, as the passing
// of their time on the server's clock would.
func lapseLeases(t *testing.T, dsn string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE strangler_leases SET until = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
}
