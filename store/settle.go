package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// ErrUnconfirmed is a change whose commit went out and whose answer was
// lost (a failover, a restart, a network cut at that instant), and whose
// outcome could not be read back since: it may have been made, audit
// entry and all.
var ErrUnconfirmed = errors.New("its commit was sent and the answer lost, and the store could not be read since to tell whether it was made")

// auditedTx runs fn, an operator's or the control plane's change, which
// records itself in the audit log (as a rule: a ramp's or a change
// request's update may not), in a transaction as inTx does, and settles
// a commit whose answer was lost: on PostgreSQL it reads back whether
// that commit was made (committed). Made, auditedTx returns nil, and
// what fn read and wrote inside the transaction is what was committed.
// Not made, its error is one Uncertain does not report: nothing was
// written. When the store cannot be read, it is ErrUnconfirmed (and
// Uncertain).
//
// Before, every such change but a route's flip failed as if refused
// while it was made and audited, and a retry of it was refused as a
// conflict; a flip was read back by the route's override, which took a
// flip as not made once another replica changed the route again.
func (s *Store) auditedTx(ctx context.Context, fn func(*sql.Tx) error) error {
	var t txMark
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if s.dialect.name != "postgres" {
			return nil
		}
		// Once fn is done: the head is its last entry if it appended one.
		return tx.QueryRowContext(ctx, `SELECT txid_current(), last_id, hash FROM strangler_audit_head WHERE one = 1`).
			Scan(&t.xid, &t.headID, &t.headHash)
	})
	if err == nil || !s.Uncertain(err) {
		return err
	}
	made, rerr := s.committed(ctx, t)
	switch {
	case rerr != nil:
		return fmt.Errorf("%w (%v): %w", ErrUnconfirmed, rerr, err)
	case !made:
		return fmt.Errorf("its commit was sent and the answer lost, and it was not made: %v", err)
	}
	// Answered as made, so no caller logs it.
	s.log.Warn("a change's commit lost its answer; read back, it was made", "transaction", t.xid, "error", err)
	return nil
}

// txMark is what committed reads a transaction back by: its id, and the
// audit chain's head as the transaction left it.
type txMark struct {
	xid      int64
	headID   int64
	headHash string
}

// committed reads whether the transaction t marks committed, once it
// has ended: one that appended to the audit log holds the chain's head
// until it ends, which this read waits for (a server that lost its
// client aborts its transaction when it notices). Its last entry is
// then in the log exactly when it committed; the server's record of
// the transaction (txid_status) says so for one that appended nothing.
// Both must say so: a standby promoted before it had the transaction
// gives its id to one of its own, which txid_status then reports on. A
// transaction the server does not know of, or one still under way (one
// that appended nothing, whose server has yet to notice), is an error:
// whether it was made is not known.
func (s *Store) committed(ctx context.Context, t txMark) (bool, error) {
	var entry bool
	var status sql.NullString
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := s.readAuditHead(ctx, tx, s.dialect.forUpdate); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM strangler_audit WHERE id = $1 AND hash = $2)`,
			t.headID, t.headHash).Scan(&entry)
		if err != nil || !entry && t.headID != 0 {
			return err // not made: no need to ask a server that may not know the id
		}
		return tx.QueryRowContext(ctx, `SELECT txid_status($1)`, t.xid).Scan(&status)
	})
	switch {
	case err != nil:
		return false, err
	case !entry && t.headID != 0, status.String == "aborted":
		return false, nil
	case status.String == "committed":
		return true, nil
	}
	return false, fmt.Errorf("transaction %d is %q", t.xid, status.String)
}
