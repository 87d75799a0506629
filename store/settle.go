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
// request's update may not), in a transaction as inTx does, and
// settles a commit whose answer was lost: on PostgreSQL it reads back,
// by the transaction's id, whether that commit was made (txid_status,
// the server's own record of it). Made, auditedTx returns nil, and what
// fn read and wrote inside the transaction is what was committed. Not
// made, its error is one Uncertain does not report: nothing was written.
// When the store cannot be read, it is ErrUnconfirmed (and Uncertain).
//
// Before, every such change but a route's flip failed as if refused
// while it was made and audited, and a retry of it was refused as a
// conflict; a flip was read back by the route's override, which took a
// flip as not made once another replica changed the route again.
func (s *Store) auditedTx(ctx context.Context, fn func(*sql.Tx) error) error {
	var xid int64
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		if s.dialect.name == "postgres" {
			if err := tx.QueryRowContext(ctx, `SELECT txid_current()`).Scan(&xid); err != nil {
				return err
			}
		}
		return fn(tx)
	})
	if err == nil || !s.Uncertain(err) {
		return err
	}
	made, rerr := s.committed(ctx, xid)
	switch {
	case rerr != nil:
		return fmt.Errorf("%w (%v): %w", ErrUnconfirmed, rerr, err)
	case !made:
		return fmt.Errorf("its commit was sent and the answer lost, and it was not made: %v", err)
	}
	// Answered as made, so no caller logs it.
	s.log.Warn("a change's commit lost its answer; read back, it was made", "transaction", xid, "error", err)
	return nil
}

// committed reads whether transaction xid committed, once it has ended:
// one that appended to the audit log holds the chain's head until it
// ends, which this read waits for (a server that lost its client aborts
// its transaction when it notices). A transaction the server does not
// know of (a standby promoted before it had it), or one still under way
// (one that appended nothing, whose server has yet to notice), is an
// error: whether it was made is not known.
func (s *Store) committed(ctx context.Context, xid int64) (bool, error) {
	var status sql.NullString
	err := inTx(ctx, s.db, func(tx *sql.Tx) error {
		if _, err := s.readAuditHead(ctx, tx, s.dialect.forUpdate); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT txid_status($1)`, xid).Scan(&status)
	})
	switch {
	case err != nil:
		return false, err
	case status.String == "committed":
		return true, nil
	case status.String == "aborted":
		return false, nil
	}
	return false, fmt.Errorf("transaction %d is %q", xid, status.String)
}
