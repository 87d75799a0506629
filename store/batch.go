package store

import (
	"context"
	"database/sql"
	"errors"
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
type batcher struct {
	db  *sql.DB
	ops chan *batchOp
	// wait is lazyWait but in tests.
	wait time.Duration
}

type batchOp struct {
	ctx context.Context
	fn  func(*sql.Tx) error
	// intent, when not nil, is the row of an intent fn journals
	// (intentRow): a batch journals all its intents in one statement
	// rather than running each one's fn.
	intent []any
	done   chan error
	lazy   bool
}

func newBatcher(db *sql.DB) *batcher {
	return &batcher{db: db, ops: make(chan *batchOp, maxBatch), wait: lazyWait}
}

// run commits batches until ctx ends.
func (b *batcher) run(ctx context.Context) {
	batch := make([]*batchOp, 0, maxBatch)
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case op := <-b.ops:
			batch = append(batch[:0], op)
		}
		if batch[0].lazy {
			// Wait for a write that must not wait, or for the time
			// lazy writes may wait, whichever comes first.
			wait.Reset(b.wait)
		company:
			for len(batch) < maxBatch {
				select {
				case op := <-b.ops:
					batch = append(batch, op)
					if !op.lazy {
						break company
					}
				case <-wait.C:
					break company
				case <-ctx.Done():
					break company
				}
			}
			wait.Stop()
		}
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
	}
}

// commit runs a batch in one transaction, its intents in as few
// statements as insertIntents takes. If any write in it fails, or the
// statement of several intents does, the transaction is rolled back and
// each write runs again alone, so one write's error (a duplicate id, a
// lost lease) is its own and the others still commit.
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
			// returned, so running the intents first is an order they
			// could have run in.
			var intents []any
			for _, op := range live {
				intents = append(intents, op.intent...)
			}
			if err := insertIntents(context.WithoutCancel(live[0].ctx), tx, intents); err != nil {
				return err
			}
			for _, op := range live {
				if op.intent != nil {
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
	if s.batcher == nil {
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
	op.ctx, op.done = ctx, make(chan error, 1)
	select {
	case s.batcher.ops <- op:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once handed over, a write is carried out: waiting for it means its
	// caller never mistakes a committed write for a failed one.
	return <-op.done
}
