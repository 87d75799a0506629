package backfill

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"strangler/config"
)

// Resuming a range after a lost connection: how often, and the first
// pause, doubled each time (1 s, 2 s, 4 s, 8 s, 16 s: half a minute for a
// server to restart or a network to come back).
const (
	resumeTries = 5
	resumePause = time.Second
)

// policy is the resumption policy every backfill mode and verify follow:
// resumeTries resumptions, the first after first, each pause double the
// last. Only the package's own tests shorten first (Options.resumePause),
// so that a database gone is found in milliseconds; a user has no knob
// to mis-set.
type policy struct{ first time.Duration }

// resuming runs attempt, and runs it again while it fails for a lost
// connection (connectionLost) to the source, the target or the state
// store, after 1, 2, 4, 8 and 16 s (a request the modern service does not
// answer is the row's own result: see stop_after_unanswered): every backfill mode
// resumes on this one policy. Each attempt goes on from where the work
// stands on record (attempt reads its checkpoint, try 0 is the first), so
// no row is skipped or copied twice. Each resumption is logged with
// attrs, which say what resumes; after resumeTries the error is returned,
// and a re-run resumes from the same checkpoint.
func (p policy) resuming(ctx context.Context, log *slog.Logger, attrs []any, attempt func(try int) error) error {
	err := attempt(0)
	for try := 1; try <= resumeTries && err != nil && connectionLost(err) && ctx.Err() == nil; try++ {
		pause := p.first << (try - 1)
		log.Warn("backfill connection lost; resuming from the checkpoint",
			append(slices.Clip(attrs), "try", try, "of", resumeTries, "pause", pause, "error", err)...)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pause):
		}
		err = attempt(try)
	}
	return err
}

// resumingGone is resuming for a step whose every try does attempt
// again whole: the planning, the reading of a sources_query's
// catalogue, verify's comparison of a table, a step of a run through
// the API. A lost connection after the last try, with gone (a ping of
// the databases the step reads) finding one out of reach, is that
// databaseGone, what naming the step; its last error is the step's own,
// which says more than the ping's (a database gone silent: that it did
// not answer within batch_timeout). With every database answering, the
// error is returned as it is.
func (p policy) resumingGone(ctx context.Context, log *slog.Logger, what string, attrs []any,
	gone func(ctx context.Context, waited string) *databaseGone, attempt func() error) error {
	err := p.resuming(ctx, log, attrs, func(int) error { return attempt() })
	if err == nil || !connectionLost(err) || ctx.Err() != nil {
		return err
	}
	if g := gone(ctx, p.resumed(what)); g != nil {
		g.last = err.Error()
		return g
	}
	return err
}

// resumed says that what, a step of the run, resumed all its tries.
func (p policy) resumed(what string) string {
	return fmt.Sprintf("%s resumed %d times over %s", what, resumeTries, p.first*(1<<resumeTries-1))
}

// databaseGone is the error of a run stopped because the source or the
// target stayed out of reach through a range's resumptions (or a
// worker's): every table reads the one and keeps its rows and
// checkpoints in the other, so each would only wait out resumptions of
// its own (half a minute a range, an hour for a run of a hundred tables)
// to stop the same way. A run through the API says it of its state
// store (apiRunner.gone), verify of what it compares. It wraps no
// network error: resuming must not take it for a lost connection to
// try again.
type databaseGone struct {
	// side is "source", "target", "state store" or "sources_query
	// catalogue".
	side string
	// waited says what found the database gone (see resumed).
	waited string
	last   string
	// verify: verify found it gone, which keeps no checkpoints.
	verify bool
}

func (e *databaseGone) Error() string {
	did := "the run stopped, every table not done with it, for a re-run to resume from its checkpoints"
	if e.verify {
		did = "verify stopped, comparing no table after it; run it again once the database answers"
	}
	return fmt.Sprintf("the %s database was still out of reach after %s (last: %s); %s", e.side, e.waited, e.last, did)
}

// unreachable is the run's error, gone, when err, a range's after its
// resumptions, is a lost connection and the source or the target still
// answers no ping (see gone); nil otherwise. A database that answers
// again leaves the table alone stopped, as a connection this table's
// work alone breaks would, with err as its error (said as a wait:
// answering).
func (r *runner) unreachable(ctx context.Context, t *table, err error, waited string) (tableErr, gone error) {
	if err == nil || !connectionLost(err) || ctx.Err() != nil {
		return err, nil
	}
	if gone := r.gone(ctx, waited); gone != nil {
		return err, gone
	}
	return answering(t, err), nil
}

// step runs f, a step of table t's own outside its key ranges (what
// names it, in the log and the run's error), on the policy that resumes
// a range, and, like a range (unreachable), says a lost connection after
// the last try with the source or the target still answering no ping as
// the run's databaseGone, on which fail stops the run. Each try does f
// again whole, so f must count nothing twice.
func (r *runner) step(ctx context.Context, t *table, what string, f func() error) error {
	err := r.resume(ctx, []any{"table", t.name, "step", what}, f)
	err, gone := r.unreachable(ctx, t, err, r.opts.policy().resumed(what))
	if gone != nil {
		return gone
	}
	return err
}

// resume runs f, a step of the run outside a range's copy, on resuming's
// policy (attrs say what resumes), and, as a range's resumption does,
// takes the run's lock again before each resumption if it went with the
// target's session: resumed without it, the run would go on beside a
// backfill that took the lock meanwhile.
func (r *runner) resume(ctx context.Context, attrs []any, f func() error) error {
	return r.opts.policy().resuming(ctx, r.opts.Log, attrs, func(try int) error {
		if try > 0 {
			if err := r.bounded(ctx, r.lock.hold); err != nil {
				return err
			}
		}
		return f()
	})
}

// stepGone is err, a step's after its resumptions, or the run's
// databaseGone, waited, when err is a lost connection and the source or
// the target still answers no ping.
func (r *runner) stepGone(ctx context.Context, err error, waited string) error {
	if !connectionLost(err) || ctx.Err() != nil {
		return err
	}
	if gone := r.gone(ctx, waited); gone != nil {
		return gone
	}
	return err
}

// gone is a databaseGone saying waited when the target or the source
// answers no ping; nil when both answer.
func (r *runner) gone(ctx context.Context, waited string) error {
	if gone := pingBoth(ctx, r.src, r.dst, waited); gone != nil {
		return gone
	}
	return nil
}

// pinging is pingBoth of src and dst as resumingGone's gone; verify
// says what it finds as verify's.
func pinging(src *sql.DB, dst *pgxpool.Pool, verify bool) func(context.Context, string) *databaseGone {
	return func(ctx context.Context, waited string) *databaseGone {
		g := pingBoth(ctx, src, dst, waited)
		if g != nil {
			g.verify = verify
		}
		return g
	}
}

// pingBoth is a databaseGone saying waited when dst, the target, or src,
// the source, answers no ping; nil when both answer.
func pingBoth(ctx context.Context, src *sql.DB, dst *pgxpool.Pool, waited string) *databaseGone {
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := dst.Ping(ctx); err != nil {
		return &databaseGone{side: "target", waited: waited, last: err.Error()}
	}
	if err := src.PingContext(ctx); err != nil {
		return &databaseGone{side: "source", waited: waited, last: err.Error()}
	}
	return nil
}

// bounded runs f with ctx bounded by the section's batch_timeout: one
// batch's transaction in the target, or another statement the run sends
// it. A target gone silent (its packets dropped, not refused) would
// otherwise be waited on until TCP gave up, some fifteen minutes; past
// the bound pgx cancels and closes the connection, and the error, a
// timeout, is a lost connection to resume from the checkpoint.
func (r *runner) bounded(ctx context.Context, f func(ctx context.Context) error) error {
	return boundTarget(ctx, r.cfg, f)
}

// boundTarget is bounded for the work outside a runner: taking and
// letting go of the run's lock, recording the run's end.
func boundTarget(ctx context.Context, cfg *config.Backfill, f func(ctx context.Context) error) error {
	return boundSide(ctx, cfg, "target", f)
}

// boundSide runs f with ctx bounded by batch_timeout, and says a bound
// that ran out as side's silence.
func boundSide(ctx context.Context, cfg *config.Backfill, side string, f func(ctx context.Context) error) error {
	d := cmp.Or(time.Duration(cfg.BatchTimeout), config.DefaultBatchTimeout)
	bctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	err := f(bctx)
	if err != nil && ctx.Err() == nil && errors.Is(bctx.Err(), context.DeadlineExceeded) {
		return &silentError{side: side, bound: d, err: err}
	}
	return err
}

// answering is err, a range's after its resumptions, once the target
// answered the ping that followed them: a bound that ran out on a target
// that answers was a wait (most often for a row lock a service's open
// transaction holds), not a silence, and the operator looks for it there.
func answering(t *table, err error) error {
	var s *silentError
	if !errors.As(err, &s) {
		return err
	}
	return fmt.Errorf("%w; the target answers, so the batch waited on a lock another session held (on %s or the ledger's tables) or a statement slower than batch_timeout", err, t.target)
}

// mysqlLost is err, a lost connection to side (the source or a
// sources_query's catalogue), said as one: the MySQL driver words a read
// or write past its timeout (batch_timeout) and a connection broken
// alike, as "invalid connection", naming neither the database nor the
// bound. Other errors, and one said so already, are returned as they are.
func mysqlLost(cfg *config.Backfill, side string, err error) error {
	var said *lostMySQL
	if !errors.Is(err, mysql.ErrInvalidConn) || errors.As(err, &said) {
		return err
	}
	return &lostMySQL{side: side, err: err, bound: cmp.Or(time.Duration(cfg.BatchTimeout), config.DefaultBatchTimeout)}
}

// sourceLost is mysqlLost of the source.
func sourceLost(cfg *config.Backfill, err error) error { return mysqlLost(cfg, "source", err) }

// lostMySQL is an error mysqlLost said.
type lostMySQL struct {
	side  string
	err   error
	bound time.Duration
}

func (e *lostMySQL) Error() string {
	return fmt.Sprintf("%s: the %s did not answer within batch_timeout (%s), or its connection broke", e.err, e.side, e.bound)
}
func (e *lostMySQL) Unwrap() error { return e.err }

// pingTimeout bounds the ping that tells a database gone from a
// connection lost: a network that drops packets answers nothing.
const pingTimeout = 10 * time.Second

// copyRangeResuming is copyRange, resumed from the range's checkpoint in
// the ledger when a connection to the source or the target broke: a
// batch's rows and its checkpoint commit together, so whatever became of
// the batch under way (rolled back, or committed with its answer lost),
// the ledger says where to go on from. A batch the ledger shows
// committed although its COMMIT's answer was lost is counted then
// (confirm). lost keeps the last try's error: a worker whose lease ends
// under it confirms the batch it left unconfirmed (copyLeased).
func (r *runner) copyRangeResuming(ctx context.Context, t *table, rg keyRange, lost *error) error {
	return r.opts.policy().resuming(ctx, r.opts.Log, []any{"table", t.name, "range", rg.no}, func(try int) error {
		if try > 0 {
			// A ledger still unreachable counts as a try too.
			var count func()
			err := r.bounded(ctx, func(ctx context.Context) (err error) {
				if err := r.lock.hold(ctx); err != nil {
					return err
				}
				if rg, err = r.checkpoint(ctx, t, rg); err != nil {
					return err
				}
				count, err = r.confirm(ctx, t, rg, *lost)
				return err
			})
			if err != nil {
				return err
			}
			count()
		}
		*lost = r.copyRange(ctx, t, rg)
		return *lost
	})
}

// confirm asks the ledger whether the batch of lost, a try's error on
// range rg, committed if it is a batch whose COMMIT's answer was lost
// (unconfirmed), and returns what counts it: a no-op for any other, and
// for one that did not commit (its rows are copied again, and counted
// then). The count is apart so that a caller whose next step fails
// counts nothing (its next try confirms again).
func (r *runner) confirm(ctx context.Context, t *table, rg keyRange, lost error) (func(), error) {
	var u *unconfirmed
	if !errors.As(lost, &u) || len(u.b.rows) == 0 {
		return func() {}, nil
	}
	ok, err := r.ledger.committed(ctx, t.name, rg, u.b.rows[len(u.b.rows)-1].key)
	if err != nil || !ok {
		return func() {}, err
	}
	return func() { r.account(t, u.b, u.out) }, nil
}

// unconfirmed is the error of a batch whose COMMIT went out and whose
// answer never came: the batch, its checkpoint with it, is in the target
// or not, and out is what it did if it is (confirm).
type unconfirmed struct {
	b   batch
	out outcome
	err error
}

func (u *unconfirmed) Error() string { return u.err.Error() }
func (u *unconfirmed) Unwrap() error { return u.err }

// checkpoint is range rg of t as the ledger has it now.
func (r *runner) checkpoint(ctx context.Context, t *table, rg keyRange) (keyRange, error) {
	if r.opts.DryRun {
		return rg, nil // nothing was written: the range starts over
	}
	rs, err := r.ledger.ranges(ctx, t)
	if err != nil {
		return rg, err
	}
	for _, k := range rs {
		if k.no == rg.no {
			k.lease = rg.lease // this copy's, not the ledger's
			return k, nil
		}
	}
	return rg, fmt.Errorf("ledger: range %d of %s is gone", rg.no, t.name)
}

// connectionLost reports whether err is a connection to a database that
// broke or could not be made, or a session the server ended, rather than
// an answer to the statement: a server shutting down or restarting, and
// a DBA ending a session or its statement (pg_terminate_backend, KILL),
// answer with an error of their own before the socket closes.
func connectionLost(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		// Class 08 is a connection exception; 57P01-03 are the server
		// shutting down (smart, fast or crash) or not yet taking
		// sessions. 57014, a cancelled statement, is also what
		// statement_timeout answers, which a retry would only repeat.
		return strings.HasPrefix(pg.Code, "08") || pg.Code == "57P01" || pg.Code == "57P02" || pg.Code == "57P03"
	}
	var my *mysql.MySQLError
	if errors.As(err, &my) {
		// 1317: the statement was killed (KILL QUERY); 1927: the session
		// was (KILL CONNECTION, as MariaDB tells it); 1053: the server is
		// shutting down. A statement that ran past max_execution_time is
		// 3024, an answer, and stops the table.
		return my.Number == 1317 || my.Number == 1927 || my.Number == 1053
	}
	var connect *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connect) || errors.As(err, &netErr) ||
		errors.Is(err, pgconn.ErrConnClosed) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}
