package store

import (
	"context"
	"database/sql"
	"errors"
)

// maxBatch bounds the writes committed together.
const maxBatch = 128

// batcher commits the SQLite store's hot writes (journal entries and queue
// changes) together: SQLite lets one transaction commit at a time, and a
// commit costs much more than the statements in it, so writes that arrive
// while a commit runs share the next one ("group commit"). Nothing waits
// for company: a write that finds the batcher idle commits alone.
type batcher struct {
	db  *sql.DB
	ops chan *batchOp
}

type batchOp struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	done chan error
}

func newBatcher(db *sql.DB) *batcher {
	return &batcher{db: db, ops: make(chan *batchOp, maxBatch)}
}

// run commits batches until ctx ends.
func (b *batcher) run(ctx context.Context) {
	batch := make([]*batchOp, 0, maxBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case op := <-b.ops:
			batch = append(batch[:0], op)
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

// commit runs a batch in one transaction. If any write in it fails, the
// transaction is rolled back and each write runs again alone, so one
// write's error (a duplicate id, a lost lease) is its own and the others
// still commit.
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
			for _, op := range live {
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
	if s.batcher == nil {
		return inTx(ctx, s.db, fn)
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
	op := &batchOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.batcher.ops <- op:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once handed over, a write is carried out: waiting for it means its
	// caller never mistakes a committed write for a failed one.
	return <-op.done
}
