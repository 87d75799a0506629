// Package migrate applies a schema's numbered SQL files (NNNN_name.sql)
// that a database has not recorded yet: the one migration runner of the
// state store (SQLite and PostgreSQL), the legacy and modern reference
// APIs and the backfill's ledger. A schema says how its engine records
// versions and how processes starting at once take turns; the runner does
// the rest the same way for all of them.
//
// Versions are applied when missing, not only when newer than the newest
// recorded: a migration numbered between two applied ones (written on a
// branch merged later) is still applied.
package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
)

// Migration is one schema change, read from NNNN_name.sql.
type Migration struct {
	// Version is the file name's leading number.
	Version int
	// Name is the file name without ".sql": "0040_audit_chain".
	Name string
	// SQL is the file's text.
	SQL string
}

// Load reads the *.sql files at the root of fsys in version order; other
// files are ignored. Every name must start with a positive version
// number, and no two may share one.
func Load(fsys fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, err
	}
	var list []Migration
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".sql")
		if !ok || e.IsDir() {
			continue
		}
		num, _, _ := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: name must start with a positive version number", e.Name())
		}
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, err
		}
		list = append(list, Migration{Version: v, Name: name, SQL: string(b)})
	}
	slices.SortFunc(list, func(a, b Migration) int { return a.Version - b.Version })
	for i := 1; i < len(list); i++ {
		if list[i].Version == list[i-1].Version {
			return nil, fmt.Errorf("migrations %s and %s share a version", list[i-1].Name, list[i].Name)
		}
	}
	return list, nil
}

// Execer runs a statement: a transaction or, for engines whose DDL
// commits on its own, the one connection that holds the session lock.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Schema is one database schema's migrations and how its engine records
// and serialises them.
type Schema struct {
	// Migrations are the schema's changes (Load).
	Migrations []Migration
	// Bootstrap creates the table of applied versions if it is missing.
	Bootstrap string
	// Applied lists the applied versions, one integer a row.
	Applied string
	// Record records m as applied, in the transaction of its SQL where
	// there is one.
	Record func(ctx context.Context, ex Execer, m Migration) error
	// TxLock is run first in the one transaction that applies every
	// migration, so that processes starting at once migrate one after the
	// other and the second finds nothing left to do (PostgreSQL's
	// transaction-scoped advisory lock, which the server releases even if
	// the process dies); "" where the transaction itself already excludes
	// other writers (SQLite's single writer).
	TxLock string
	// SessionLock, when set, is for engines whose DDL commits on its own
	// (MySQL, MariaDB), where a transaction can neither hold a lock nor
	// undo a migration: it takes a lock held by conn and returns its
	// release, and the migrations run on conn statement by statement
	// (split at the semicolons that end lines), each recorded once its
	// statements have run. Their files must be safe to run again (IF NOT
	// EXISTS): a failure leaves the statements before it applied.
	SessionLock func(ctx context.Context, conn *sql.Conn) (release func(), err error)
	// After, if set, is the step of a migration that SQL cannot take, run
	// in its transaction right after its SQL; nil for most. Not with
	// SessionLock.
	After func(ctx context.Context, tx *sql.Tx, m Migration) error
}

// Result is what a run found and did.
type Result struct {
	// Applied are the migrations this run applied, in order.
	Applied []Migration
	// Newest is the newest version recorded after the run. Newer than
	// every migration of the schema, it means a newer release migrated the
	// database and this older one was rolled back to.
	Newest int
}

// Run applies the schema's migrations that db has not recorded, in
// version order. With a transaction (no SessionLock) a failure leaves the
// schema as it was.
func (s Schema) Run(ctx context.Context, db *sql.DB) (Result, error) {
	if s.SessionLock != nil {
		if s.After != nil {
			return Result{}, errors.New("migrate: After needs a transaction, which SessionLock rules out")
		}
		return s.runOnSession(ctx, db)
	}
	var res Result
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return Result{}, err
	}
	defer tx.Rollback()
	if s.TxLock != "" {
		if _, err := tx.ExecContext(ctx, s.TxLock); err != nil {
			return Result{}, fmt.Errorf("lock: %w", err)
		}
	}
	pending, newest, err := s.pending(ctx, tx)
	if err != nil {
		return Result{}, err
	}
	for _, m := range pending {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return Result{}, fmt.Errorf("%s: %w", m.Name, err)
		}
		if s.After != nil {
			if err := s.After(ctx, tx, m); err != nil {
				return Result{}, fmt.Errorf("%s: %w", m.Name, err)
			}
		}
		if err := s.Record(ctx, tx, m); err != nil {
			return Result{}, fmt.Errorf("%s: record: %w", m.Name, err)
		}
		res.Applied = append(res.Applied, m)
		newest = max(newest, m.Version)
	}
	if err := tx.Commit(); err != nil {
		return Result{}, fmt.Errorf("commit: %w", err)
	}
	res.Newest = newest
	return res, nil
}

func (s Schema) runOnSession(ctx context.Context, db *sql.DB) (Result, error) {
	var res Result
	conn, err := db.Conn(ctx)
	if err != nil {
		return Result{}, err
	}
	defer conn.Close()
	release, err := s.SessionLock(ctx, conn)
	if err != nil {
		return Result{}, fmt.Errorf("lock: %w", err)
	}
	defer release()
	pending, newest, err := s.pending(ctx, conn)
	if err != nil {
		return Result{}, err
	}
	for _, m := range pending {
		for _, stmt := range statements(m.SQL) {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				return res, fmt.Errorf("%s: %w", m.Name, err)
			}
		}
		if err := s.Record(ctx, conn, m); err != nil {
			return res, fmt.Errorf("%s: record: %w", m.Name, err)
		}
		res.Applied = append(res.Applied, m)
		newest = max(newest, m.Version)
	}
	res.Newest = newest
	return res, nil
}

// querier is a transaction or a connection.
type querier interface {
	Execer
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// pending creates the table of applied versions if needed and returns the
// migrations it does not list, and the newest version it does.
func (s Schema) pending(ctx context.Context, q querier) ([]Migration, int, error) {
	if _, err := q.ExecContext(ctx, s.Bootstrap); err != nil {
		return nil, 0, err
	}
	rows, err := q.QueryContext(ctx, s.Applied)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	applied := map[int]bool{}
	newest := 0
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, 0, err
		}
		applied[v] = true
		newest = max(newest, v)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	var pending []Migration
	for _, m := range s.Migrations {
		if !applied[m.Version] {
			pending = append(pending, m)
		}
	}
	return pending, newest, nil
}

// MySQLLock is the SessionLock of MySQL and MariaDB: GET_LOCK on name
// followed by the database's name, so that processes migrating one
// database take turns and other databases on the server do not wait;
// it waits up to 30 seconds for the lock.
func MySQLLock(name string) func(ctx context.Context, conn *sql.Conn) (func(), error) {
	return func(ctx context.Context, conn *sql.Conn) (func(), error) {
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(CONCAT(?, '.', DATABASE()), 30)", name).Scan(&got); err != nil {
			return nil, err
		}
		if got.Int64 != 1 {
			return nil, errors.New("another process's migration held the lock for 30 seconds")
		}
		return func() {
			conn.ExecContext(context.WithoutCancel(ctx), "DO RELEASE_LOCK(CONCAT(?, '.', DATABASE()))", name)
		}, nil
	}
}

// statements splits a migration file at the semicolons that end its
// lines, dropping comment lines: MySQL's driver runs one statement at a
// time.
func statements(text string) []string {
	var out []string
	var cur strings.Builder
	for line := range strings.SplitSeq(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(strings.TrimSpace(line), ";") {
			if s := strings.TrimSpace(cur.String()); s != ";" {
				out = append(out, strings.TrimSuffix(s, ";"))
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}
