package store

import (
	"context"
	"database/sql"
	"errors"
	"math/bits"
	"slices"
	"sync"
	"time"
)

// maxBatch bounds the writes committed together.
const maxBatch = 128

// lazyWait bounds how long a lazy write waits for another write to commit
// with.
const lazyWait = 5 * time.Millisecond

// batcher commits the SQLite store's hot writes (journal entries and queue
// changes) together: SQLite lets one transaction commit at a time, and a
// commit costs much more than the statements in it, so writes that arrive
// while a commit runs share the next one ("group commit"). A write that
// finds the batcher idle commits alone, unless it is lazy: a lazy write
// (the result of a delivery to the secondary, which no client waits for)
// waits up to lazyWait for another write and commits with it. A dual
// write takes three commits (its intent, the primary's answer, the
// delivery's result) when each goes alone; with the delivery's result
// riding on the next write's commit, two.
//
// A write that must not wait and finds the batcher idle (nothing
// committing, none handed over) commits on its caller's goroutine
// (submit), as the batcher would have at once: handing it over and back
// cost two goroutine switches, a fifth of such a commit. Lazy writes the
// batcher holds while they wait for company do not make it busy: such a
// write takes them along into its commit (commitAlone). Before, the
// batcher held the commit while they waited, so on a quiet facade the
// intent or answer of nearly every dual write after a delivery was
// handed to the batcher's goroutine and back to share it.
type batcher struct {
	db  *sql.DB
	ops chan *batchOp
	// committing is held by whoever commits writes: the batcher, or a
	// caller committing its write on its own goroutine.
	committing sync.Mutex
	// mu guards waiting: the lazy writes the batcher received and that
	// wait for company, which the next commit takes.
	mu      sync.Mutex
	waiting []*batchOp
	// alone is commitAlone's batch, and aloneDone where it hears its
	// write's result, kept for the next; only the holder of committing
	// uses them.
	alone     []*batchOp
	aloneDone chan error
	// wait is lazyWait but in tests.
	wait time.Duration
}

type batchOp struct {
	ctx context.Context
	fn  func(*sql.Tx) error
	// rows, when not nil, is the kind of write fn is, and row its values:
	// a batch carries out all its writes of one kind together (see
	// rowWrite) rather than running each one's fn.
	rows *rowWrite
	row  []any
	done chan error
	lazy bool
}

// rowWrite is a kind of write that a batch carries out for all its
// writes of the kind at once: statements[k] writes 1<<k of them, given
// width values for each, one after another. A batch's writes of a kind
// go in statements of power-of-two sizes, so that a handful of texts
// covers every batch and each stays prepared on its connection
// (stmtcache.go): one statement a write costs SQLite and database/sql
// their per-statement work (bind, step, reset) once a write.
type rowWrite struct {
	width      int
	statements []string
}

// newRowWrite returns the kind of write whose statement for n writes is
// statement(n).
func newRowWrite(width int, statement func(n int) string) *rowWrite {
	w := &rowWrite{width: width}
	for n := 1; n <= maxBatch; n *= 2 {
		w.statements = append(w.statements, statement(n))
	}
	return w
}

// errRowsUnchanged is a rowWrite's statement that changed fewer rows
// than it was given writes.
var errRowsUnchanged = errors.New("a write changed no row")

// exec carries out the writes whose values are rows. It is
// errRowsUnchanged when a statement changed fewer rows than it was given
// writes; then none, some or all of the others may be done, for the
// caller to roll back.
func (w *rowWrite) exec(ctx context.Context, tx *sql.Tx, rows []any) error {
	for len(rows) > 0 {
		k := min(bits.Len(uint(len(rows)/w.width))-1, len(w.statements)-1)
		n := 1 << k
		res, err := tx.ExecContext(ctx, w.statements[k], rows[:n*w.width]...)
		if err != nil {
			return err
		}
		if got, err := res.RowsAffected(); err != nil {
			return err
		} else if got != int64(n) {
			return errRowsUnchanged
		}
		rows = rows[n*w.width:]
	}
	return nil
}

func newBatcher(db *sql.DB) *batcher {
	return &batcher{db: db, ops: make(chan *batchOp, maxBatch), aloneDone: make(chan error, 1), wait: lazyWait}
}

// run commits batches until ctx ends.
func (b *batcher) run(ctx context.Context) {
	batch := make([]*batchOp, 0, maxBatch)
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	for {
		batch = batch[:0]
		var first *batchOp
		select {
		case <-ctx.Done():
			return
		case first = <-b.ops:
		}
		if first.lazy {
			// Wait for a write that must not wait, or for the time
			// lazy writes may wait, whichever comes first. Meanwhile a
			// write that finds nothing committing takes the waiting
			// ones along (commitAlone): it never waits for them.
			b.hold(first)
			wait.Reset(b.wait)
		company:
			for b.held() < maxBatch {
				select {
				case op := <-b.ops:
					if !op.lazy {
						batch = append(batch, op)
						break company
					}
					b.hold(op)
				case <-wait.C:
					break company
				case <-ctx.Done():
					break company
				}
			}
			wait.Stop()
		} else {
			batch = append(batch, first)
		}
		b.committing.Lock()
		batch = b.takeWaiting(batch)
	more:
		for len(batch) < maxBatch {
			select {
			case op := <-b.ops:
				batch = append(batch, op)
			default:
				break more
			}
		}
		b.commit(batch)
		b.committing.Unlock()
	}
}

// hold keeps op, a lazy write, waiting for the next commit.
func (b *batcher) hold(op *batchOp) {
	b.mu.Lock()
	b.waiting = append(b.waiting, op)
	b.mu.Unlock()
}

// held is how many lazy writes wait for the next commit.
func (b *batcher) held() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.waiting)
}

// takeWaiting appends the lazy writes waiting for a commit to batch, for
// the caller holding committing to commit, and returns it.
func (b *batcher) takeWaiting(batch []*batchOp) []*batchOp {
	b.mu.Lock()
	defer b.mu.Unlock()
	batch = append(batch, b.waiting...)
	clear(b.waiting)
	b.waiting = b.waiting[:0]
	return batch
}

// commit runs a batch in one transaction, its writes of each rowWrite
// kind together. If any write in it fails, or a statement of several
// writes changes fewer rows than it was given writes, the transaction is
// rolled back and each write runs again alone, so one write's error (a
// duplicate id, a lost lease) is its own and the others still commit.
func (b *batcher) commit(batch []*batchOp) {
	live := batch[:0]
	for _, op := range batch {
		if err := op.ctx.Err(); err != nil {
			op.done <- err
			continue
		}
		live = append(live, op)
	}
	if len(live) == 0 {
		return
	}
	if len(live) > 1 {
		if err := b.inTx(live[0].ctx, func(tx *sql.Tx) error {
			// The writes of one batch were all submitted before any
			// returned, so running those of a kind first is an order
			// they could have run in.
			var kinds []*rowWrite
			var rows [][]any
			for _, op := range live {
				if op.rows == nil {
					continue
				}
				i := slices.Index(kinds, op.rows)
				if i < 0 {
					i = len(kinds)
					kinds, rows = append(kinds, op.rows), append(rows, nil)
				}
				rows[i] = append(rows[i], op.row...)
			}
			for i, k := range kinds {
				if err := k.exec(context.WithoutCancel(live[0].ctx), tx, rows[i]); err != nil {
					return err
				}
			}
			for _, op := range live {
				if op.rows != nil {
					continue
				}
				if err := op.fn(tx); err != nil {
					return err
				}
			}
			return nil
		}); err == nil {
			for _, op := range live {
				op.done <- nil
			}
			return
		}
	}
	for _, op := range live {
		op.done <- b.inTx(op.ctx, op.fn)
	}
}

// commitAlone carries out op, a write that must not wait, on the
// caller's goroutine if nothing is committing and no write was handed
// over, with the lazy writes waiting for company if there are any (as
// the batcher would have carried out op with them); false when op is to
// join the batcher's next batch instead.
func (b *batcher) commitAlone(op *batchOp) (done bool, err error) {
	if op.lazy || len(b.ops) > 0 || !b.committing.TryLock() {
		return false, nil
	}
	defer b.committing.Unlock()
	if batch := b.takeWaiting(b.alone[:0]); len(batch) > 0 {
		op.done = b.aloneDone
		batch = append(batch, op)
		b.commit(batch)
		clear(batch)
		b.alone = batch[:0]
		return true, <-op.done
	}
	if err := op.ctx.Err(); err != nil {
		return true, err
	}
	return true, b.inTx(op.ctx, op.fn)
}

// inTx ignores ctx's cancellation: a batch's transaction holds other
// callers' writes too, and one caller giving up must not roll them back.
func (b *batcher) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return inTx(context.WithoutCancel(ctx), b.db, fn)
}

// errClosed is returned for writes submitted after the store closed.
var errClosed = errors.New("store: closed")

// write runs fn in a transaction: on SQLite one shared with other writes
// arriving at the same time, on PostgreSQL its own. fn may run twice (the
// second time alone, after its batch failed), so it must not keep state
// from a first run.
func (s *Store) write(ctx context.Context, fn func(*sql.Tx) error) error {
	return s.submit(ctx, &batchOp{fn: fn})
}

// writeLazy is write for a write whose caller can wait a few milliseconds
// more: on SQLite it waits up to lazyWait for another write to share a
// commit with.
func (s *Store) writeLazy(ctx context.Context, fn func(*sql.Tx) error) error {
	return s.submit(ctx, &batchOp{fn: fn, lazy: true})
}

// submit carries out op, a write: op.fn, or on SQLite op as part of a
// batch.
func (s *Store) submit(ctx context.Context, op *batchOp) error {
	if s.batcher == nil || !s.gate.ready.Load() {
		// Before the store is up the batcher does not run: bringUp's
		// own writes go alone, and callers' are refused (schemaGate).
		return inTx(ctx, s.db, op.fn)
	}
	// Close waits for the writes under way, so the batcher outlives them.
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	s.writes.Add(1)
	s.mu.Unlock()
	defer s.writes.Done()
	op.ctx = ctx
	if done, err := s.batcher.commitAlone(op); done {
		return err
	}
	op.done = make(chan error, 1)
	select {
	case s.batcher.ops <- op:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once handed over, a write is carried out: waiting for it means its
	// caller never mistakes a committed write for a failed one.
	return <-op.done
}
