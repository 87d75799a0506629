package store

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// fencedRoute is the route of intent's writes.
const fencedRoute = "update-patient"

// flipToModern is a flip of fencedRoute to modern from no override.
func flipToModern(ctx context.Context, s *Store, linked ...Linked) (domain.Override, error) {
	return s.SetOverride(ctx, domain.Override{Route: fencedRoute, Mode: domain.ModeModern, Actor: "alice", Reason: "cut over"}, 0,
		domain.AuditEntry{Actor: "alice", Action: "flip", Route: fencedRoute, Reason: "cut over"}, linked...)
}

// fenceOf is fencedRoute's fence as a replica reading its flags on s
// finds it.
func fenceOf(t *testing.T, s *Store) int64 {
	t.Helper()
	_, _, fences, err := s.RouteFlags(context.Background(), []string{fencedRoute})
	if err != nil {
		t.Fatal(err)
	}
	fence, ok := fences[fencedRoute]
	if !ok || fence <= 0 {
		t.Fatalf("the route's fence after reading its flags: got %d (%t), want one above 0", fence, ok)
	}
	return fence
}

// TestAChangeOfARouteFencesTheWritesOfAReplicaThatDidNotFollowIt: replica
// b read the route's flags, then replica a flipped the route to modern
// (its check of the journal found nothing owed there). A write b decides
// under the flags it read is refused, however b journals it, and the
// journal keeps nothing of it; under the flags read again it is journaled.
// A clear moves the fence too. Before, b journaled it: a write owed to
// modern, which the route now sends writes straight to, so a later write
// there would be undone by its delivery.
func TestAChangeOfARouteFencesTheWritesOfAReplicaThatDidNotFollowIt(t *testing.T) {
	t.Parallel()
	dsn := testdb.Postgres(t)
	a, b := openStore(t, dsn, nil), openStore(t, dsn, nil)
	ctx := context.Background()
	read := fenceOf(t, b)
	flipped, err := flipToModern(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if flipped.Fence == read {
		t.Fatalf("the flip left the route's fence at %d", read)
	}
	journalers := []struct {
		name    string
		journal func(w domain.Intent) error
	}{
		{"BeginWrite", func(w domain.Intent) error { return b.BeginWrite(ctx, w, time.Minute) }},
		{"BeginWriteTurn", func(w domain.Intent) error { _, err := b.BeginWriteTurn(ctx, w, time.Minute); return err }},
		{"BeginKeyedWrite", func(w domain.Intent) error {
			_, err := b.BeginKeyedWrite(ctx, w, domain.IdempotencyKey{Key: "key-" + w.ID, Fingerprint: "put"}, time.Minute)
			return err
		}},
	}
	for _, j := range journalers {
		w := intent("stale-"+j.name, "/patients/42")
		w.Fence = read
		if err := j.journal(w); !errors.Is(err, domain.ErrStaleFlags) {
			t.Errorf("%s under the flags read before the flip: got %v, want the stale flags refused", j.name, err)
		}
	}
	if open, err := a.OpenPrimaries(ctx); err != nil || len(open) != 0 {
		t.Fatalf("the journal's open writes after the refusals: got %v %v, want none", open, err)
	}
	// Read again, as the replica does on the refusal.
	overrides, _, fences, err := b.RouteFlags(ctx, []string{fencedRoute})
	if err != nil {
		t.Fatal(err)
	}
	if got := overrides[fencedRoute]; got.Mode != domain.ModeModern || fences[fencedRoute] != flipped.Fence {
		t.Fatalf("the flags read again: %+v with fence %d, want modern with fence %d", got, fences[fencedRoute], flipped.Fence)
	}
	for _, j := range journalers {
		w := intent("fresh-"+j.name, "/patients/"+j.name)
		w.Fence = flipped.Fence
		if err := j.journal(w); err != nil {
			t.Errorf("%s under the flags read again: %v", j.name, err)
		}
	}
	_, cleared, err := a.ClearOverride(ctx, fencedRoute, flipped.Version, domain.AuditEntry{Actor: "alice", Action: "clear", Route: fencedRoute})
	if err != nil {
		t.Fatal(err)
	}
	w := intent("after-clear", "/patients/7")
	w.Fence = flipped.Fence
	if err := b.BeginWrite(ctx, w, time.Minute); cleared == flipped.Fence || !errors.Is(err, domain.ErrStaleFlags) {
		t.Errorf("a write under the flags before a clear (fence %d, now %d): got %v, want the stale flags refused", flipped.Fence, cleared, err)
	}
}

// linkFunc is a Linked that runs a function in the change's transaction.
type linkFunc func(ctx context.Context, tx *sql.Tx) error

func (l linkFunc) link(ctx context.Context, _ *Store, tx *sql.Tx) error { return l(ctx, tx) }

// TestAWriteJournaledWhileAFlipCommitsWaitsForItAndIsRefused: the flip's
// transaction has moved the route's fence and its check has read the
// journal (nothing owed to modern), but it has not committed yet when
// replica b journals a write under the flags it read before. The write
// waits for the flip to end, then is refused. Journaled at once, as the
// flip's check could not see it, both would pass: the route sending
// writes straight to modern, and a write owed there.
func TestAWriteJournaledWhileAFlipCommitsWaitsForItAndIsRefused(t *testing.T) {
	t.Parallel()
	dsn := testdb.Postgres(t)
	a, b := openStore(t, dsn, nil), openStore(t, dsn, nil)
	ctx := context.Background()
	read := fenceOf(t, b)

	var flipPID int
	checked, release := make(chan struct{}), make(chan struct{})
	flipped := make(chan error, 1)
	go func() {
		_, err := flipToModern(ctx, a,
			CheckJournal(func(open map[string]map[domain.Backend]int) error {
				if len(open) != 0 {
					return errors.New("dual writes are owed")
				}
				return nil
			}),
			linkFunc(func(ctx context.Context, tx *sql.Tx) error {
				err := tx.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&flipPID)
				close(checked)
				<-release
				return err
			}))
		flipped <- err
	}()
	<-checked

	journaled := make(chan error, 1)
	go func() {
		w := intent("w1", "/patients/42")
		w.Fence = read
		journaled <- b.BeginWrite(ctx, w, time.Minute)
	}()
	testkit.Eventually(t, 10*time.Second, "the write waits for the flip's transaction, or is done", func() bool {
		if len(journaled) > 0 {
			return true
		}
		var n int
		err := a.db.QueryRowContext(ctx, `SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))`, flipPID).Scan(&n)
		return err == nil && n > 0
	})
	close(release)
	if err := <-flipped; err != nil {
		t.Fatalf("the flip: %v", err)
	}
	if err := <-journaled; !errors.Is(err, domain.ErrStaleFlags) {
		t.Errorf("the write journaled as the flip committed: got %v, want the stale flags refused (the flip's check saw no write owed)", err)
	}
	if open, err := a.OpenPrimaries(ctx); err != nil || len(open) != 0 {
		t.Errorf("the journal's open writes: got %v %v, want none", open, err)
	}
}

// TestAFlipSeesAWriteJournaledBeforeItsFenceMoved: b journals a write
// under the flags it read, committed before a's flip moves the fence; the
// flip's check, in its transaction, sees it and refuses the flip.
func TestAFlipSeesAWriteJournaledBeforeItsFenceMoved(t *testing.T) {
	t.Parallel()
	dsn := testdb.Postgres(t)
	a, b := openStore(t, dsn, nil), openStore(t, dsn, nil)
	ctx := context.Background()
	w := intent("w1", "/patients/42")
	w.Fence = fenceOf(t, b)
	if err := b.BeginWrite(ctx, w, time.Minute); err != nil {
		t.Fatal(err)
	}
	errOwed := errors.New("dual writes are owed")
	_, err := flipToModern(ctx, a, CheckJournal(func(open map[string]map[domain.Backend]int) error {
		if open[fencedRoute][domain.Legacy] != 1 {
			return nil
		}
		return errOwed
	}))
	if !errors.Is(err, errOwed) {
		t.Errorf("the flip after the write was journaled: got %v, want it refused for the write owed", err)
	}
	if o, err := a.Overrides(ctx); err != nil || len(o) != 0 {
		t.Errorf("the overrides after the refused flip: got %v %v, want none", o, err)
	}
}
