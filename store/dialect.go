package store

import (
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite" // registers the "sqlite" driver: pure Go, so the binary stays cgo-free
	sqlite3 "modernc.org/sqlite/lib"

	"strangler/internal/dsn"
	"strangler/internal/filecap"
)

//go:embed migrations
var migrationFiles embed.FS

// dialect is what differs between the back-ends. Everything else, every
// query included, is shared: both accept $1 placeholders, ON CONFLICT
// upserts and RETURNING.
type dialect struct {
	name string
	// migrations holds this back-end's NNNN_name.sql files.
	migrations fs.FS
	// bootstrap creates the table that records applied migrations.
	bootstrap string
	// migrationLock is run first in the migration transaction so that two
	// processes starting at once migrate one after the other; "" when the
	// transaction itself already excludes other writers.
	migrationLock string
	// skipLocked ends the repair claim's row selection: on PostgreSQL, rows
	// another replica is claiming at this moment are passed over rather
	// than waited for or claimed twice.
	skipLocked string
	// pendingInOrder is how a claim names the repairs table so that it
	// walks pending repairs in sequence order and stops at its limit.
	// SQLite's planner prefers the state index and then sorts the whole
	// backlog (tens of milliseconds at 15,000, holding the only
	// connection), so it is told which index to use.
	pendingInOrder string
	// lockKey holds a lock on ($1 namespace, $2 key) until the transaction
	// ends, serialising writers of one resource or route across replicas;
	// "" when every write transaction is serialised anyway.
	lockKey string
	// forUpdate ends a SELECT whose rows stay locked until the transaction
	// ends; "" when every write transaction is serialised anyway.
	forUpdate string
	// nextSeq returns the next value of the repair queue's sequence and
	// whether a write to resource $1 is still to be delivered before the
	// one numbered so (earlierWrite), once bumpSeq, when not "", has
	// advanced the sequence. On PostgreSQL one statement does both; on
	// SQLite an UPDATE … RETURNING would, but SQLite gathers what
	// RETURNING returns in a temporary b-tree each time (built and torn
	// down: 16k instructions a dual write, more than a second statement).
	// Recording a primary's answer on SQLite runs neither: it numbers
	// the write from a block of numbers (seqBlock), and its UPDATE checks
	// for an earlier write itself (queueEmbedded).
	nextSeq, bumpSeq string
	// file is the embedded store's file, which writes are refused once
	// it is removed or replaced; nil on PostgreSQL.
	file *storeFile
	// gate keeps callers off the database until its schema is current;
	// open until a Store takes the database (initStore).
	gate *schemaGate
	// takeTurn gives the sent write $1 its resource's turn with the
	// primary (TakeTurn).
	takeTurn string
	// notify announces a route flag change to every replica's Watch when
	// the transaction commits; "" when there is only one instance.
	notify string
	// encodeTime converts a UTC time into what the driver stores.
	encodeTime func(time.Time) any
	// emptyBlob is an empty BLOB/bytea literal: SQLite's STRICT tables
	// refuse the text '' in a BLOB column.
	emptyBlob string
}

// Namespaces of lockKey, so a resource and a route of the same name do not
// share a lock.
const (
	lockResource int32 = 1
	lockSamples  int32 = 2
	lockSchemas  int32 = 3
)

// notifyChannel is the PostgreSQL channel route flag changes are announced
// on. The payload is the schema, so stores sharing a database in different
// schemas ignore each other.
const notifyChannel = "strangler_overrides"

func sub(dir string) fs.FS {
	f, err := fs.Sub(migrationFiles, dir)
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return f
}

func sqliteDialect() *dialect {
	return &dialect{
		name:       "sqlite",
		migrations: sub("migrations/sqlite"),
		bootstrap: `CREATE TABLE IF NOT EXISTS strangler_schema_migrations (
			version    INTEGER PRIMARY KEY,
			name       TEXT NOT NULL,
			applied_at TEXT NOT NULL
		) STRICT`,
		bumpSeq: `UPDATE strangler_sequences SET value = value + 1 WHERE name = 'strangler_repair_seq'`,
		nextSeq: `SELECT value, EXISTS (` + earlierWrite("$1", "value") + `)
			FROM strangler_sequences WHERE name = 'strangler_repair_seq'`,
		pendingInOrder: "strangler_repairs r INDEXED BY strangler_repairs_pending_seq",
		takeTurn:       takeTurn,
		encodeTime:     func(t time.Time) any { return formatTime(t) },
		emptyBlob:      "X''",
	}
}

func postgresDialect() *dialect {
	return &dialect{
		name:       "postgres",
		migrations: sub("migrations/postgres"),
		bootstrap: `CREATE TABLE IF NOT EXISTS strangler_schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL
		)`,
		// A transaction-level advisory lock is released by the commit, and by
		// the server if the process dies, so a crashed replica never leaves it
		// held. Keyed by schema: replicas of one deployment share it, tests in
		// their own schemas do not wait for each other.
		migrationLock: `SELECT pg_advisory_xact_lock(hashtextextended(
			'strangler_schema_migrations ' || coalesce(current_schema(), ''), 0))`,
		skipLocked:     "FOR UPDATE OF r SKIP LOCKED",
		pendingInOrder: "strangler_repairs r",
		lockKey:        `SELECT pg_advisory_xact_lock($1, hashtext($2))`,
		forUpdate:      "FOR UPDATE",
		takeTurn:       takeTurn,
		nextSeq: `SELECT value, EXISTS (` + earlierWrite("$1", "value") + `)
			FROM nextval('strangler_repair_seq') AS value`,
		notify:     `SELECT pg_notify('` + notifyChannel + `', coalesce(current_schema(), ''))`,
		encodeTime: func(t time.Time) any { return t },
		emptyBlob:  "''::bytea",
	}
}

// takeTurn is the statement of dialect.takeTurn: the unique index
// strangler_repairs_turn refuses it while another sent write to the
// resource has the turn (turnHeld).
const takeTurn = `UPDATE strangler_repairs SET turn = true WHERE id = $1 AND state = 'sent'`

// turnHeld reports whether err is the refusal of takeTurn: a unique
// violation, which only the turn's index can raise on that statement.
func turnHeld(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505" && pe.ConstraintName == "strangler_repairs_turn"
	}
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

// openDB opens the database addr names, without connecting yet.
func openDB(addr string) (*dialect, *sql.DB, error) {
	gate := &schemaGate{}
	gate.ready.Store(true)
	if path, options, ok := dsn.SQLite(addr); ok {
		db, file, err := openSQLiteFile(path, options, gate)
		d := sqliteDialect()
		d.file, d.gate = file, gate
		return d, db, err
	}
	if strings.HasPrefix(addr, "postgres://") || strings.HasPrefix(addr, "postgresql://") {
		db, err := openPostgres(addr, gate)
		d := postgresDialect()
		d.gate = gate
		return d, db, err
	}
	scheme, _, _ := strings.Cut(addr, ":")
	return nil, nil, fmt.Errorf("store: unsupported store %q; want sqlite:PATH or postgres://…", scheme+":")
}

// openSQLite opens the embedded file at path with the options of its
// address (sync=full or none).
//
// Connection strategy: one connection for the whole process. SQLite lets
// one writer in at a time, so a pool would only move the queueing from Go
// into SQLite's busy handler, and a deferred transaction that reads and
// then writes can fail with SQLITE_BUSY even with a busy timeout (SQLite
// cannot wait there without risking a deadlock). With a single connection
// callers queue in database/sql, never see SQLITE_BUSY, and every
// transaction sees the previous one's writes. The cost is that reads wait
// behind writes; every statement here is short and touches indexed rows.
// BEGIN IMMEDIATE and busy_timeout still matter when another process opens
// the same file (an operator's sqlite3 shell, a second Store in tests):
// transactions take the write lock up front and wait for it.
//
// WAL lets readers in other processes proceed during a write. With the
// default synchronous=NORMAL a commit is durable once it returns as far as
// the process is concerned: it survives the facade being killed (SIGKILL,
// OOM) at any instant, which is the dual-write guarantee, and costs no
// fsync per commit. The last commits may be lost if the machine itself
// loses power; "sqlite:PATH?sync=full" fsyncs every commit and survives
// that too, at the price of a disk flush (milliseconds) on every dual
// write. Several replicas, or power-loss durability without that price,
// call for PostgreSQL.
func openSQLite(path, options string) (*sql.DB, error) {
	db, _, err := openSQLiteFile(path, options, nil)
	return db, err
}

// walSizeLimit is what the write-ahead log is truncated to when a
// checkpoint resets it: nothing, as what it held is in the database.
const walSizeLimit = 0

// openSQLiteFile is openSQLite, with the file its connections check,
// kept from callers by gate until the schema is current (nil: never).
func openSQLiteFile(path, options string, gate *schemaGate) (*sql.DB, *storeFile, error) {
	sync, err := dsn.SQLiteSync(path, options)
	if err != nil {
		return nil, nil, fmt.Errorf("store: sqlite: %w", err)
	}
	if err := filecap.RegularOrAbsent(path); err != nil {
		return nil, nil, fmt.Errorf("store: sqlite: %w", err)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous("+sync+")")
	q.Add("_pragma", "foreign_keys(1)")
	// An erased request (a delivered write's body, an expired sample)
	// must leave the disk, not linger in free space: secure_delete zeroes
	// what a write frees, and journal_size_limit truncates the
	// write-ahead log when a checkpoint resets it, so that the frames
	// holding the request before its erasure go with it.
	q.Add("_pragma", "secure_delete(1)")
	q.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", walSizeLimit))
	createPrivate(path)
	registered, err := sql.Open("sqlite", "")
	if err != nil {
		return nil, nil, fmt.Errorf("store: sqlite: %w", err)
	}
	drv := registered.Driver()
	registered.Close() // it never opened a connection: only its driver is wanted
	file := openStoreFile(path)
	db := sql.OpenDB(cachingConnector{dsn: path + "?" + q.Encode(), file: file, drv: drv, gate: gate})
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, file, nil
}

// createPrivate creates the store's file at path, empty, readable by its
// owner alone, unless it exists: it holds dual writes' requests, and
// SQLite would create it, and its write-ahead log and index (which take
// the file's mode), readable by every user under the usual umask (0644).
// A file that cannot be created is SQLite's to report when it connects
// (see fileCause).
func createPrivate(path string) {
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	}
}

// busyTimeout is how long a SQLite connection waits for another process's
// lock on the file before it gives up with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// isBusy reports whether err is SQLite's SQLITE_BUSY (any extended code).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// readOnlyTransaction is PostgreSQL's read_only_sql_transaction: a
// write in a read-only transaction.
const readOnlyTransaction = "25006"

// openPostgres opens a pool on the server addr names, through pgx, that
// gate keeps callers off until the schema is current.
func openPostgres(addr string, gate *schemaGate) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(addr)
	if err != nil {
		return nil, fmt.Errorf("store: postgres: %w", dsn.RedactError(err, addr))
	}
	// A session that a database or role made read-only (ALTER DATABASE
	// … SET default_transaction_read_only, as managed services do when
	// the storage runs out) reads that setting once, when it starts, and
	// stays read-only after the setting is undone: the pool would go on
	// refusing writes on the connections it opened meanwhile for up to
	// their lifetime. A connection whose write was refused as read-only
	// is closed, so that the pool opens one that reads the setting anew.
	closeOnFatal := cfg.OnPgError
	cfg.OnPgError = func(c *pgconn.PgConn, e *pgconn.PgError) bool {
		if e.Code == readOnlyTransaction {
			return false
		}
		return closeOnFatal == nil || closeOnFatal(c, e)
	}
	db := stdlib.OpenDB(*cfg, stdlib.OptionBeforeConnect(gate.beforeConnect), stdlib.OptionResetSession(gate.resetSession))
	// Enough for the request path's journal writes and the background
	// workers; PostgreSQL's own limit is shared by every replica.
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(5 * time.Minute)
	// Recycled now and then, so connections move to a new primary after a
	// failover and spread across replicas behind a pooler.
	db.SetConnMaxLifetime(30 * time.Minute)
	return db, nil
}
