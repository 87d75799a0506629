package store

import (
	"context"
	"crypto/rand"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// A facade's start bounds reaching the store's server, not bringing its
// schema up to date: a migration that waits for another session's lock,
// or rewrites a large table, is progressing, and one cancelled at a
// deadline is rolled back and starts over from nothing the next time,
// as often as it is tried.

// retryInterval is how often Start tries to reach an unreachable server.
const retryInterval = 2 * time.Second

// reachTimeout bounds each of Start's background attempts to reach the
// server.
const reachTimeout = 10 * time.Second

// migrationReportEvery is how often a migration still running says in
// the log what it waits for.
const migrationReportEvery = 10 * time.Second

// Start is Open for a long-running facade: ctx bounds reaching the server
// and how long Start waits for the schema to be brought up to date, never
// the migrations themselves.
//   - A server that cannot be reached yet: Start returns at once with a
//     Store whose calls fail until a background retry has reached it and
//     brought its schema up to date, so the facade can serve with what it
//     knows meanwhile.
//   - Migrations still running when ctx's deadline passes (waiting for
//     another session's lock, another replica migrating, a large table
//     rewritten): Start returns the Store, whose calls fail until they are
//     done, in the background; the log says every few seconds what they
//     wait for.
//   - A migration that fails (a role without CREATE) fails Start, as do
//     configuration errors; one that fails after Start returned is tried
//     again every few seconds, its error logged.
//   - ctx cancelled (the process told to stop): the migrations are rolled
//     back and Start fails.
//
// Healthy says whether the store is usable.
func Start(ctx context.Context, dsn string, log *slog.Logger, opts ...Option) (*Store, error) {
	s, err := openStoreDB(dsn, log, opts)
	if err != nil {
		return nil, err
	}
	if err := s.reach(ctx); err != nil {
		var connectErr *connectError
		if !errors.As(err, &connectErr) || errors.Is(ctx.Err(), context.Canceled) {
			s.Close()
			return nil, err
		}
		s.log.Error("store unreachable; retrying in the background", "store", s.dialect.name, "error", errors.Unwrap(err))
		s.inBackground(nil)
		return s, nil
	}
	up := make(chan error, 1)
	s.watchers.Add(1)
	go func() {
		defer s.watchers.Done()
		up <- s.bringUp(s.closing)
	}()
	select {
	case err := <-up:
		if err == nil {
			return s, nil
		}
		if !isBusy(err) {
			s.Close()
			return nil, err
		}
		// Another process holds the embedded file's write lock (an
		// operator's sqlite3 shell): waited for like a server.
		up <- err
		s.inBackground(up)
		return s, nil
	case <-ctx.Done():
	}
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// Closing cancels the migration: pgx asks the server to cancel
		// its statement (a session waiting for a lock would not notice
		// its client gone), and the transaction is rolled back.
		s.Close()
		return nil, fmt.Errorf("store: start stopped while migrating: %w", ctx.Err())
	}
	s.log.Warn("store migration still running; serving without the store until it is done", "store", s.dialect.name)
	if run := s.migration.Load(); run != nil {
		s.reportMigration(run)
	}
	s.inBackground(up)
	return s, nil
}

// reach makes the first connection to the store's server, within ctx; a
// failure to reach it is a *connectError. An embedded file that cannot
// be opened (a read-only directory or file system, no permission) is no
// server to wait for: its error says why, and is no *connectError. One
// that another process holds locked (SQLITE_BUSY) is waited for.
func (s *Store) reach(ctx context.Context) error {
	err := connect(schemaWork(ctx), s.db)
	if err == nil {
		return nil
	}
	if f := s.dialect.file; f != nil && !isBusy(err) {
		return fmt.Errorf("store: open sqlite file %s: %w", f.path, fileCause(f.path, err))
	}
	return &connectError{fmt.Errorf("store: connect to %s: %w", s.dialect.name, err)}
}

// fileCause is why SQLite could not open the file at path, which it
// reports only as "unable to open database file": the error of opening
// the file for writing, or of creating a file next to it (the write-ahead
// log and its index live there), or else err.
func fileCause(path string, err error) error {
	f, oerr := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if oerr != nil {
		return oerr
	}
	f.Close()
	probe, oerr := os.CreateTemp(filepath.Dir(path), ".strangler-probe-*")
	if oerr != nil {
		return fmt.Errorf("the directory must take the write-ahead log: %w", oerr)
	}
	probe.Close()
	os.Remove(probe.Name())
	return err
}

// bringUp brings a reached store's schema up to date and prepares it,
// then lets callers in. ctx bounds it all.
func (s *Store) bringUp(ctx context.Context) error {
	ctx = schemaWork(ctx)
	if err := s.migrate(ctx); err != nil {
		return err
	}
	if err := s.prepare(ctx); err != nil {
		return err
	}
	if s.batcher != nil {
		s.watchers.Add(1) // bringUp's caller is a watcher, or Close has not begun
		go func() {
			defer s.watchers.Done()
			s.batcher.run(s.closing)
		}()
	}
	s.gate.ready.Store(true)
	return nil
}

// inBackground brings the store up in the background: it waits for up,
// the outcome of a bringUp already running, if not nil, then tries every
// retryInterval to reach the server and bring the store up, until it is
// up or closed.
func (s *Store) inBackground(up <-chan error) {
	name := s.dialect.name
	s.watchers.Add(1)
	go func() {
		defer s.watchers.Done()
		var err error
		if up != nil {
			if err = <-up; err == nil {
				s.log.Info("store schema up to date", "store", name)
				return
			}
		}
		var logged string
		t := time.NewTicker(retryInterval)
		defer t.Stop()
		for {
			var connectErr *connectError
			if err != nil && s.closing.Err() == nil && !errors.As(err, &connectErr) && err.Error() != logged {
				// Once per cause: a role without CREATE fails alike
				// every few seconds until an operator grants it.
				s.log.Error("store migration failed; retrying in the background", "store", name, "error", err)
				logged = err.Error()
			}
			select {
			case <-s.closing.Done():
				return
			case <-t.C:
			}
			rctx, cancel := context.WithTimeout(s.closing, reachTimeout)
			err = s.reach(rctx)
			cancel()
			if err == nil {
				err = s.bringUp(s.closing)
			}
			if err == nil {
				s.log.Info("store reachable", "store", name)
				return
			}
		}
	}()
}

// connectError is a store whose server could not be reached.
type connectError struct{ err error }

func (e *connectError) Error() string { return e.err.Error() }
func (e *connectError) Unwrap() error { return e.err }

// Healthy reports whether the store is usable now: its schema is current
// and the server answers.
func (s *Store) Healthy(ctx context.Context) error {
	if !s.gate.ready.Load() {
		return s.gate.refusal()
	}
	return s.Ping(ctx)
}

// schemaGate keeps a store's callers off its database until bringUp has
// brought the schema up to date and prepared the store: their statements
// would run against the tables of an earlier release (missing columns, a
// resource's digest not yet the one writes are ordered by). It refuses
// them a connection; bringUp's own work, marked by schemaWork, passes.
type schemaGate struct {
	ready atomic.Bool
	// migrating is set while a migration runs.
	migrating atomic.Bool
}

// errStoreNotReached and errStoreMigrating are what a call gets before
// the store is up.
var (
	errStoreNotReached = errors.New("store: not reachable yet")
	errStoreMigrating  = errors.New("store: schema migration still running")
)

func (g *schemaGate) refusal() error {
	if g.migrating.Load() {
		return errStoreMigrating
	}
	return errStoreNotReached
}

// pass reports whether a connection may be used under ctx.
func (g *schemaGate) pass(ctx context.Context) bool {
	return g.ready.Load() || ctx.Value(schemaWorkKey{}) != nil
}

// beforeConnect refuses a new PostgreSQL connection to callers until
// the store is up.
func (g *schemaGate) beforeConnect(ctx context.Context, _ *pgx.ConnConfig) error {
	if g.pass(ctx) {
		return nil
	}
	return g.refusal()
}

// resetSession refuses an idle connection (bringUp's) to callers until
// the store is up: database/sql discards it and opens a new one, which
// beforeConnect refuses.
func (g *schemaGate) resetSession(ctx context.Context, _ *pgx.Conn) error {
	if g.pass(ctx) {
		return nil
	}
	return driver.ErrBadConn
}

type schemaWorkKey struct{}

// schemaWork marks ctx as bringUp's, which schemaGate lets through.
func schemaWork(ctx context.Context) context.Context {
	return context.WithValue(ctx, schemaWorkKey{}, true)
}

// migrationRun is a migration transaction under way.
type migrationRun struct {
	started time.Time
	// tag is the PostgreSQL session's application_name while it
	// migrates, for pg_stat_activity; "" on SQLite.
	tag string
}

func newMigrationRun(postgres bool) *migrationRun {
	run := &migrationRun{started: time.Now()}
	if postgres {
		b := make([]byte, 6)
		rand.Read(b)
		run.tag = "strangler migration " + hex.EncodeToString(b)
	}
	return run
}

// migrationWait is what the session tagged $1 waits for (a lock, on
// what), and who holds it: process id, user, application, state and how
// long their transaction has been open; never a query's text, which may
// hold patient data.
const migrationWait = `SELECT
	coalesce((SELECT CASE WHEN l.locktype = 'advisory' THEN 'the migration lock: another replica is migrating this store'
			ELSE format('%s on %s', l.mode, coalesce(l.relation::regclass::text, l.locktype)) END
		FROM pg_locks l WHERE l.pid = a.pid AND NOT l.granted LIMIT 1), ''),
	coalesce((SELECT string_agg(format('pid %s (user %s, application %s, %s, transaction open %s s)',
			b.pid, coalesce(b.usename::text, '?'), coalesce(nullif(b.application_name, ''), '-'),
			coalesce(b.state, '?'), coalesce(round(extract(epoch FROM now() - b.xact_start))::text, '?')), '; ' ORDER BY b.pid)
		FROM pg_stat_activity b WHERE b.pid = ANY (pg_blocking_pids(a.pid))), '')
	FROM pg_stat_activity a WHERE a.application_name = $1`

// reportMigration logs that run is still under way, and on PostgreSQL
// what it waits for and who holds that.
func (s *Store) reportMigration(run *migrationRun) {
	attrs := []any{"store", s.dialect.name, "running_for", time.Since(run.started).Round(time.Second).String()}
	if run.tag != "" {
		ctx, cancel := context.WithTimeout(schemaWork(context.Background()), 5*time.Second)
		defer cancel()
		var waitingFor, blockedBy string
		if err := s.db.QueryRowContext(ctx, migrationWait, run.tag).Scan(&waitingFor, &blockedBy); err == nil && waitingFor != "" {
			attrs = append(attrs, "waiting_for", waitingFor, "blocked_by", blockedBy)
		}
	}
	s.log.Warn("store migration still running", attrs...)
}

// reportWhileRunning logs run every migrationReportEvery until stop is
// called.
func (s *Store) reportWhileRunning(run *migrationRun) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(migrationReportEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				s.reportMigration(run)
			}
		}
	}()
	return func() {
		close(done)
		<-exited
	}
}
