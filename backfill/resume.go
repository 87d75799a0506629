package backfill

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
)

// Resuming a range after a lost connection: how often, and the first
// pause, doubled each time (1 s, 2 s, 4 s, 8 s, 16 s: half a minute for a
// server to restart or a network to come back).
const (
	resumeTries = 5
	resumePause = time.Second
)

// copyRangeResuming is copyRange, resumed from the range's checkpoint in
// the ledger when a connection to the source or the target broke: a
// batch's rows and its checkpoint commit together, so whatever became of
// the batch under way (rolled back, or committed with its answer lost),
// the ledger says where to go on from, and no row is skipped or copied
// twice. Each resumption is logged; after resumeTries the error stops the
// table, and a re-run resumes from the same checkpoint.
func (r *runner) copyRangeResuming(ctx context.Context, t *table, rg keyRange) error {
	err := r.copyRange(ctx, t, rg)
	for try := 1; try <= resumeTries && err != nil && connectionLost(err) && ctx.Err() == nil; try++ {
		pause := resumePause << (try - 1)
		r.opts.Log.Warn("backfill connection lost; resuming the range from its checkpoint",
			"table", t.name, "range", rg.no, "try", try, "of", resumeTries, "pause", pause, "error", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		// A ledger still unreachable counts as a try too.
		if rg, err = r.checkpoint(ctx, t, rg); err == nil {
			err = r.copyRange(ctx, t, rg)
		}
	}
	return err
}

// checkpoint is range rg of t as the ledger has it now.
func (r *runner) checkpoint(ctx context.Context, t *table, rg keyRange) (keyRange, error) {
	if r.opts.DryRun {
		return rg, nil // nothing was written: the range starts over
	}
	rs, err := r.ledger.ranges(ctx, t.name)
	if err != nil {
		return rg, err
	}
	for _, k := range rs {
		if k.no == rg.no {
			return k, nil
		}
	}
	return rg, fmt.Errorf("ledger: range %d of %s is gone", rg.no, t.name)
}

// connectionLost reports whether err is a connection to a database that
// broke or could not be made, rather than an answer from the server.
func connectionLost(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return false
	}
	var connect *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connect) || errors.As(err, &netErr) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}
