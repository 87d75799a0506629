// Package store owns the facade's durable state: the dual-write journal and
// its repair queue, route flag overrides and their audit log, the hourly
// counts behind the retirement report, shadow mismatch samples and learned
// noise, and the keys waiting for read-repair. It keeps them in an embedded
// SQLite file for a single instance or in PostgreSQL for several replicas,
// with one set of queries over database/sql and a small dialect for the
// differences.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"strangler/phi"
)

// Errors callers can test for with errors.Is. Each is returned wrapped with
// detail.
var (
	// ErrNotFound means no item has the given id or key.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the item changed since the caller read it (a version
	// mismatch), or an id is already taken.
	ErrConflict = errors.New("conflict")
	// ErrLeaseLost means the caller no longer holds the repair it is finishing;
	// another worker claimed it after the lease ran out, or an operator
	// retried or discarded it.
	ErrLeaseLost = errors.New("lease lost")
	// ErrInvalidState means the action does not apply to the item in its current
	// state, such as retrying a repair that is already done.
	ErrInvalidState = errors.New("invalid state")
)

// StateError is ErrInvalidState for a repair, saying why the action does
// not fit it: the state it is in, for an operator to read.
type StateError struct{ Why string }

func (e *StateError) Error() string { return e.Why + ": " + ErrInvalidState.Error() }

// Is makes a StateError ErrInvalidState.
func (e *StateError) Is(target error) bool { return target == ErrInvalidState }

// Store is the facade's durable state. It is safe for concurrent use; on
// PostgreSQL several Stores, in several processes, may share one schema.
type Store struct {
	db      *sql.DB
	dialect *dialect
	dsn     string
	log     *slog.Logger
	// now is this process's clock, which clock moves onto the store's,
	// for times the caller does not pass in (created_at, updated_at,
	// audit times); tests in this package may replace it.
	now func() time.Time
	// leaseNow is the embedded store's lease clock (see leaseAt); tests in
	// this package may replace it.
	leaseNow func() time.Time
	// clockOffset is the offset ClockOffset last measured, in
	// nanoseconds (LastClockOffset).
	clockOffset atomic.Int64

	// closing stops the watchers when the Store closes; watchers counts
	// them so Close can wait until they are gone. mu orders starting a
	// watcher before closed is set, or not at all.
	closing  context.Context
	close    context.CancelFunc
	watchers sync.WaitGroup
	mu       sync.Mutex
	closed   bool
	// batcher groups SQLite's hot writes into shared commits, once the
	// store is brought up (bringUp runs it until the store closes); nil
	// on PostgreSQL. writes counts the writes handed to it and not
	// answered, which Close waits for before stopping it.
	batcher *batcher
	writes  sync.WaitGroup
	// gate is open once the schema is known to be current; until then
	// (a Store from Start whose server is not reachable yet, or whose
	// migrations are still running) every call fails (see schemaGate).
	gate *schemaGate
	// migration is the migration under way, nil when none is.
	migration atomic.Pointer[migrationRun]
	// keys encrypt what the store keeps of requests; nil keeps it in clear.
	keys *keyring
	// hasher holds the store's hash key once it is loaded (see
	// loadHashKey): resources are ordered by their digest under it.
	hasher *phi.Hasher
	// intents journals writes as sent (BeginWrite), completions marks
	// delivered writes done (CompleteRepair).
	intents, completions *rowWrite
	// outcomes are the UPDATEs that record the primary's answer.
	outcomes outcomeStatements
	// intentTurn journals an intent holding its resource's turn if free
	// (BeginWriteTurn); "" on SQLite.
	intentTurn string
	// kept are the resources whose turn a write left sent keeps in an
	// embedded store (KeepTurn); nil on PostgreSQL, where every write
	// takes its turn in the store.
	kept *keptTurns
	// seqs numbers the outcomes an embedded store records (seqBlock);
	// unused on PostgreSQL.
	seqs seqBlock
}

// Option configures a Store at Open or Start.
type Option func(*options)

type options struct {
	keys [][32]byte
}

// WithEncryption encrypts what the store keeps of requests with AES-256-GCM
// under keys: the first encrypts, every one decrypts (store_encryption).
func WithEncryption(keys [][32]byte) Option {
	return func(o *options) { o.keys = keys }
}

// openStoreDB is a Store on the database dsn names that has not connected
// yet: Open's and Start's first step.
func openStoreDB(dsn string, log *slog.Logger, opts []Option) (*Store, error) {
	d, db, err := openDB(dsn)
	if err != nil {
		return nil, err
	}
	return initStore(d, db, dsn, log, opts)
}

// initStore is a Store on db that has not connected yet.
func initStore(d *dialect, db *sql.DB, dsn string, log *slog.Logger, opts []Option) (*Store, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	keys, err := newKeyring(o.keys)
	if err != nil {
		db.Close()
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	closing, cancel := context.WithCancel(context.Background())
	s := &Store{db: db, dialect: d, dsn: dsn, log: log, now: time.Now, leaseNow: monotonicClock(time.Now()),
		closing: closing, close: cancel, keys: keys, hasher: phi.NewHasher(nil), gate: d.gate}
	// Closed until bringUp has migrated and prepared the store.
	s.gate.ready.Store(false)
	s.completions = newRowWrite(3, s.completeStatement)
	s.outcomes = s.outcomeStatements()
	if d.name == "postgres" {
		// One intent a statement, as PostgreSQL has no batcher, each
		// under its route's fence.
		s.intents = &rowWrite{width: intentWidth + 1, statements: []string{s.fencedIntentStatement(false)}}
		s.intentTurn = s.fencedIntentStatement(true)
	} else {
		s.intents = newRowWrite(intentWidth, s.intentStatement)
	}
	if d.name == "sqlite" {
		s.kept = &keptTurns{resources: make(map[string]struct{})}
		s.batcher = newBatcher(db)
	}
	return s, nil
}

// Shared reports whether several replicas may share this store:
// PostgreSQL. An SQLite file serves one process.
func (s *Store) Shared() bool { return s.dialect.name == "postgres" }

// Hasher is the keyed hash every replica of this store shares, for what
// the facade shows in place of patient data. It has its key once the
// store has been reached (see Start).
func (s *Store) Hasher() *phi.Hasher { return s.hasher }

// prepare readies a migrated store: its clock's offset, its hash key, resources journaled
// by earlier releases made digests like the ones journaled now, and, on
// SQLite, the writes the process before left sent (noteLeftSent).
func (s *Store) prepare(ctx context.Context) error {
	// Before the first stamp (see clock): a replica days off would
	// otherwise stamp on its own clock until the first counts flush.
	if _, err := s.ClockOffset(ctx); err != nil {
		return err
	}
	if err := s.loadHashKey(ctx); err != nil {
		return err
	}
	if err := s.hashOldResources(ctx); err != nil {
		return err
	}
	if s.kept != nil {
		return s.noteLeftSent(ctx)
	}
	return nil
}

// Open connects to the store named by dsn and brings its schema up to date.
// dsn is "sqlite:PATH" for an embedded file (created if missing) or a
// "postgres://…" URL. log receives what the store cannot return as an error,
// such as a dropped LISTEN connection; nil discards it. ctx bounds it all,
// migrations included: commands that open the store for one job use it.
func Open(ctx context.Context, dsn string, log *slog.Logger, opts ...Option) (*Store, error) {
	s, err := openStoreDB(dsn, log, opts)
	if err != nil {
		return nil, err
	}
	if err := s.reach(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.bringUp(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// connect makes the first connection to the store. Opening a SQLite file
// runs its pragmas, and switching a new file to WAL takes a lock that
// SQLite does not wait for with busy_timeout: when another process (a
// second replica, an operator's shell) opens the file at that instant, the
// connection fails with SQLITE_BUSY. That is retried for as long as
// busy_timeout would have waited.
func connect(ctx context.Context, db *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	for {
		err := db.PingContext(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Close stops the store's watchers and closes its connections. Closing
// again does nothing.
func (s *Store) Close() error {
	s.mu.Lock()
	closed := s.closed
	s.closed = true
	s.mu.Unlock()
	if closed {
		return nil
	}
	s.writes.Wait()
	s.close()
	s.watchers.Wait()
	if s.dialect.file != nil {
		defer s.dialect.file.close()
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Ping reports whether the store answers, for readiness and degraded-mode
// reporting.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping %s: %w", s.dialect.name, err)
	}
	return nil
}

// Backend names the kind of store: "sqlite" or "postgres".
func (s *Store) Backend() string { return s.dialect.name }

// inTx runs fn in a transaction on db and commits it, or rolls it back if
// fn or the commit fails. A failed commit is a *commitError: whether it
// happened may not be known (see Uncertain). A transaction whose
// connection broke before COMMIT runs once more, on another connection, so
// fn must not keep state from a first run: after PostgreSQL restarts or a
// network cut, the pool's idle connections are all dead, and the first
// write after would fail on one of them.
func inTx(ctx context.Context, db *sql.DB, fn func(*sql.Tx) error) error {
	broken, err := tryTx(ctx, db, false, fn)
	if broken && ctx.Err() == nil {
		_, err = tryTx(ctx, db, true, fn)
	}
	return err
}

// tryTx runs fn in a transaction on one connection, on a live one (it
// answers a ping) if live, and commits it. broken reports that the
// transaction failed before COMMIT was sent because its connection broke
// (the server restarted, the network cut it): the server has rolled it
// back, nothing was written, and it is safe to run again. A COMMIT that
// went out and failed is never broken: the commit may have happened and
// its answer been lost, and a second run could write twice; the caller
// gets a commitError, which Uncertain reports.
func tryTx(ctx context.Context, db *sql.DB, live bool, fn func(*sql.Tx) error) (broken bool, err error) {
	var conn *sql.Conn
	if live {
		conn, err = liveConn(ctx, db)
	} else {
		conn, err = db.Conn(ctx)
	}
	if err != nil {
		// A connection cut as it was being made (the server restarting
		// as the pool grows) is worth one more try too.
		var connect *pgconn.ConnectError
		return errors.As(err, &connect), err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return closed(conn), err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return closed(conn), err
	}
	if err := tx.Commit(); err != nil {
		// Not even pgx's "conn closed" (said to come before the
		// connection is used): it is the answer too when COMMIT went out
		// and the connection broke while its answer was awaited.
		return false, &commitError{err}
	}
	return false, nil
}

// liveConn returns a connection that answers a ping. The pool's idle
// connections broke with the one that failed, and pgx checks one before
// reuse only when it has been idle for over a second: a retry on one of
// them would fail the same way. Each one found dead is discarded, so at
// worst every idle one is tried and then a new one made.
func liveConn(ctx context.Context, db *sql.DB) (*sql.Conn, error) {
	for tries := db.Stats().Idle + 1; ; tries-- {
		conn, err := db.Conn(ctx)
		if err != nil {
			return nil, err
		}
		err = conn.PingContext(ctx)
		if err == nil {
			return conn, nil
		}
		conn.Close()
		if tries <= 1 {
			return nil, err
		}
	}
}

// closed reports whether conn's connection to PostgreSQL has broken. An
// embedded SQLite connection never does.
func closed(conn *sql.Conn) bool {
	var broken bool
	conn.Raw(func(dc any) error {
		if c, ok := dc.(*stdlib.Conn); ok {
			broken = c.Conn().IsClosed()
		}
		return nil
	})
	return broken
}

// commitError is a commit that failed.
type commitError struct{ err error }

func (e *commitError) Error() string { return "commit: " + e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// clock returns the store's current time in UTC, at the microsecond
// precision both back-ends keep: on PostgreSQL, this process's clock
// moved by the server's lead on it as last measured (ClockOffset, at
// start and at each counts flush), so that every replica stamps what
// it writes (a write's changes, samples, schemas, noise) on the clock
// the others compare those times with, however far its own is off.
func (s *Store) clock() time.Time {
	return s.now().Add(s.LastClockOffset()).UTC().Truncate(time.Microsecond)
}

// leaseAt is the one place that decides what time a lease runs on (a
// dual write's delivery lease, the lease of a write at the primary, the
// lease of the replica driving the ramps), and so does when a queued
// write is due (next_attempt_at, set and compared on the same clock): it
// returns the SQL for the lease clock's now plus d, using parameter $n,
// and that parameter's argument. On PostgreSQL the clock is the server's
// (now()), as the backfill's leases are: every replica takes and tests a
// lease on the same clock, so one whose own clock is wrong or steps
// forward never takes another's live lease for lapsed, and a retry's
// backoff (or the wait a secondary's Retry-After asked for) lasts as
// long whichever replica set it and whichever claims it. On the embedded
// store, which one process uses, it is that process's monotonic clock
// (monotonicClock), so that a step of the wall clock does not lapse a
// live lease or a backoff either.
func (s *Store) leaseAt(n int, d time.Duration) (string, any) {
	return s.leaseParam(n), s.leaseArg(d)
}

// leaseParam is leaseAt's SQL, and leaseArg its argument, for a statement
// that places them apart (a batch's rows).
func (s *Store) leaseParam(n int) string {
	if s.dialect.name == "postgres" {
		// now() is the transaction's start: a lease taken runs from
		// before its commit, never longer than asked.
		return fmt.Sprintf("(now() + $%d * interval '1 microsecond')", n)
	}
	return fmt.Sprintf("$%d", n)
}

func (s *Store) leaseArg(d time.Duration) any {
	if s.dialect.name == "postgres" {
		return d.Microseconds()
	}
	return s.ts(s.leaseNow().Add(d))
}

// monotonicClock is a clock that reads start's wall time advanced by the
// monotonic time passed since: NTP stepping the wall clock does not move
// it. Leases left in the file by an earlier process are read against it
// as wall times, so they lapse within a lease of when they would have.
func monotonicClock(start time.Time) func() time.Time {
	return func() time.Time { return start.Add(time.Since(start)) }
}

// clockTolerance is the least disagreement ClockOffset reports: below
// it a replica's clock counts as the store's. Hourly counts and windows
// of hours or days cannot tell a second apart, and reporting noise as an
// offset would move a time read on an hour's boundary into the hour
// before.
const clockTolerance = time.Second

// ClockOffset is how far the store's clock is ahead of this replica's
// (negative: behind), for times replicas compare with one another's but
// the store does not stamp itself (the hour counts are filed under, the
// window a report reads). On PostgreSQL it is the server's clock, which
// every replica shares, measured against this process's clock around
// one query: an offset within the query's round trip plus a second is
// none. The embedded store, which one process uses, has no other clock:
// zero.
func (s *Store) ClockOffset(ctx context.Context) (time.Duration, error) {
	if s.dialect.name != "postgres" {
		return 0, nil
	}
	before := s.now()
	var server time.Time
	if err := s.db.QueryRowContext(ctx, `SELECT clock_timestamp()`).Scan(&server); err != nil {
		return 0, fmt.Errorf("store: read the server's clock: %w", err)
	}
	after := s.now()
	half := after.Sub(before) / 2
	off := server.Sub(before.Add(half))
	if off.Abs() <= half+clockTolerance {
		off = 0
	}
	s.clockOffset.Store(int64(off))
	return off, nil
}

// LastClockOffset is the offset ClockOffset last measured (zero before
// the first), for times checked where a query per check cannot be
// afforded: a force value's expiry, on every request that carries one,
// and the store's own stamps (clock). It is measured once the store is
// reached, and by the counts' flush every few seconds on every replica.
func (s *Store) LastClockOffset() time.Duration { return time.Duration(s.clockOffset.Load()) }
