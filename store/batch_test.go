package store

import (
	"bytes"
	"context"
	"database/sql"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// startBatcher runs a batcher on a new SQLite file whose lazy writes wait
// up to wait, until the test ends.
func startBatcher(t testing.TB, wait time.Duration) *batcher {
	t.Helper()
	db, err := openSQLite(filepath.Join(t.TempDir(), "batch.db"), "")
	if err != nil {
		t.Fatal(err)
	}
	b := newBatcher(db)
	b.wait = wait
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		db.Close()
	})
	return b
}

// submit hands b a write that notes the transaction it ran in.
func submit(b *batcher, lazy bool, ran chan<- *sql.Tx) *batchOp {
	op := &batchOp{ctx: context.Background(), done: make(chan error, 1), lazy: lazy,
		fn: func(tx *sql.Tx) error {
			ran <- tx
			return nil
		}}
	b.ops <- op
	return op
}

// finished waits up to a few seconds for op to be carried out.
func finished(t *testing.T, op *batchOp, what string) {
	t.Helper()
	select {
	case err := <-op.done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("%s is still waiting after 5s", what)
	}
}

// TestALazyWriteCommitsWithTheNextWrite: the result of a delivery, which
// no client waits for, waits for the next write and shares its commit,
// and that write does not wait for anything.
func TestALazyWriteCommitsWithTheNextWrite(t *testing.T) {
	b := startBatcher(t, time.Minute)
	ran := make(chan *sql.Tx, 3)
	lazy := submit(b, true, ran)
	select {
	case <-lazy.done:
		t.Fatal("the lazy write committed alone at once, with no other write to share its commit")
	case <-time.After(50 * time.Millisecond):
	}
	eager := submit(b, false, ran)
	finished(t, eager, "the write after the lazy one")
	finished(t, lazy, "the lazy write")
	if first, second := <-ran, <-ran; first != second {
		t.Error("the lazy write and the next one committed in two transactions, want one")
	}
}

// TestAWriteThatMustNotWaitCommitsAtOnce: a write on the request path
// (an intent, the primary's answer) that finds the batcher idle commits
// alone, without waiting for company.
func TestAWriteThatMustNotWaitCommitsAtOnce(t *testing.T) {
	b := startBatcher(t, time.Minute)
	ran := make(chan *sql.Tx, 1)
	finished(t, submit(b, false, ran), "a write alone")
}

// TestAWriteFindingTheBatcherIdleCommitsOnItsCallersGoroutine: a write
// on the request path that finds no batch held, committing or handed
// over is carried out by its caller, not handed to the batcher's
// goroutine and back (two goroutine switches, 14k of a dual write's
// 503k instructions): it commits with that goroutine gone.
func TestAWriteFindingTheBatcherIdleCommitsOnItsCallersGoroutine(t *testing.T) {
	s := newStore(t, backends()[0], nil)
	s.close() // ends the watchers, the batcher's goroutine among them
	testkit.Eventually(t, 30*time.Second, "the batcher's goroutine ended", func() bool {
		buf := make([]byte, 1<<20)
		return !bytes.Contains(buf[:runtime.Stack(buf, true)], []byte("store.(*batcher).run("))
	})
	journaled := make(chan struct{})
	go func() {
		defer close(journaled)
		journal(t, s, "w1", "/patients/1")
	}()
	select {
	case <-journaled:
	case <-time.After(30 * time.Second):
		t.Error("the write waited for the batcher's goroutine, with no other write to commit with")
		// Let it commit, so that the store can close.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go s.batcher.run(ctx)
		<-journaled
	}
}

// TestAWriteFindingLazyWritesWaitingTakesThemAlong: a write on the
// request path that finds nothing committing but lazy writes (delivery
// results) waiting for company commits them with its own on its
// caller's goroutine, as the batcher would have. Before, the batcher
// held the commit while they waited, so on a quiet facade the intent or
// answer of nearly every dual write after a delivery was handed to the
// batcher's goroutine and back (two goroutine switches on the client's
// way).
func TestAWriteFindingLazyWritesWaitingTakesThemAlong(t *testing.T) {
	b := startBatcher(t, time.Minute)
	ran := make(chan *sql.Tx, 2)
	lazy := submit(b, true, ran)
	testkit.Eventually(t, 30*time.Second, "the batcher holds the lazy write", func() bool { return b.held() == 1 })
	eager := &batchOp{ctx: context.Background(), fn: func(tx *sql.Tx) error {
		ran <- tx
		return nil
	}}
	done, err := b.commitAlone(eager)
	if !done {
		t.Fatal("the write is to be handed to the batcher's goroutine, which holds nothing but a lazy write waiting for company")
	}
	if err != nil {
		t.Fatal(err)
	}
	finished(t, lazy, "the lazy write")
	if first, second := <-ran, <-ran; first != second {
		t.Error("the lazy write and the write that took it along committed in two transactions, want one")
	}
	if n := b.held(); n != 0 {
		t.Errorf("%d lazy writes still wait, want none", n)
	}
}

// TestALazyWriteAloneCommitsAfterItsWait: with no other write coming, a
// lazy write commits once it has waited its time.
func TestALazyWriteAloneCommitsAfterItsWait(t *testing.T) {
	b := startBatcher(t, 10*time.Millisecond)
	ran := make(chan *sql.Tx, 1)
	finished(t, submit(b, true, ran), "a lazy write alone")
}

// TestADeliveryResultWaitsForCompany: the store records a delivery's
// result (CompleteRepair, FailRepair) as a lazy write, so that it shares
// the commit of the next write on the request path.
func TestADeliveryResultWaitsForCompany(t *testing.T) {
	ctx := context.Background()
	s := newStore(t, backends()[0], nil)
	s.batcher.wait = time.Minute // before the first lazy write: the send orders it
	journal(t, s, "w1", "/patients/1")
	if got := claimIDs(t, s, "worker"); len(got) != 1 {
		t.Fatalf("claimed %v, want [w1]", got)
	}
	completed := make(chan error, 1)
	go func() { completed <- s.CompleteRepair(ctx, "w1", "worker") }()
	// Only once the batcher holds the result can the next write share its
	// commit: a pause instead let a goroutine that started late hand it
	// over after that write, to wait its minute alone.
	testkit.Eventually(t, 30*time.Second, "the delivery's result handed to the batcher", func() bool {
		return len(completed) > 0 || waitingIn("(*Store).CompleteRepair")
	})
	select {
	case err := <-completed:
		t.Fatalf("the delivery's result committed alone at once (%v), with no write to share its commit", err)
	case <-time.After(50 * time.Millisecond):
	}
	journal(t, s, "w2", "/patients/2")
	select {
	case err := <-completed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the delivery's result still waits after the next write committed")
	}
	if st := state(t, s, "w1"); st != "done" {
		t.Errorf("w1 is %s, want done", st)
	}
}

// waitingIn reports whether a goroutine in the function named fn waits in
// Store.submit for the write it handed to the batcher: blocked receiving
// its result, past the select that hands it over.
func waitingIn(fn string) bool {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte("[chan receive")) && bytes.Contains(g, []byte("store.(*Store).submit(")) &&
			bytes.Contains(g, []byte(fn+"(")) {
			return true
		}
	}
	return false
}
