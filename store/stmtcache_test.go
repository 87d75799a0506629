package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestCachedStatementsGiveTheSameAnswers: statements the SQLite
// connection keeps prepared insert every row they are given, and a query
// run again while its own rows are still being read (which a shared
// prepared statement would reset under them) reads every row both times.
func TestCachedStatementsGiveTheSameAnswers(t *testing.T) {
	db, err := openSQLite(filepath.Join(t.TempDir(), "cache.db"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	for n := range 5 {
		if _, err := db.ExecContext(ctx, `INSERT INTO t (n) VALUES ($1)`, n); err != nil {
			t.Fatal(err)
		}
	}
	const q = `SELECT n FROM t WHERE n >= $1 ORDER BY n`
	sum := func(rows interface {
		Next() bool
		Scan(...any) error
	}) (total, count int) {
		for rows.Next() {
			var n int
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			total += n
			count++
		}
		return total, count
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	outer, err := tx.QueryContext(ctx, q, 0)
	if err != nil {
		t.Fatal(err)
	}
	outer.Next() // the outer query is now mid-way through its rows
	inner, err := tx.QueryContext(ctx, q, 1)
	if err != nil {
		t.Fatal(err)
	}
	if total, count := sum(inner); total != 10 || count != 4 {
		t.Errorf("the nested query read %d rows summing to %d, want 4 summing to 10", count, total)
	}
	inner.Close()
	if total, count := sum(outer); total != 10 || count != 4 {
		t.Errorf("the outer query read %d more rows summing to %d, want 4 summing to 10", count, total)
	}
	outer.Close()
	again, err := tx.QueryContext(ctx, q, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if total, count := sum(again); total != 7 || count != 2 {
		t.Errorf("the query run again read %d rows summing to %d, want 2 summing to 7", count, total)
	}
}

// TestStatementsArePreparedOnce: the SQLite connection prepares each
// statement the store runs once and reuses it: after the first round of
// an insert and a query, a hundred more with other arguments leave the
// connection's prepared statements as they were, the same ones. A
// nested run of a query whose statement is busy is prepared apart and
// leaves the cache as it was too.
func TestStatementsArePreparedOnce(t *testing.T) {
	db, err := openSQLite(filepath.Join(t.TempDir(), "cache.db"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	const insert, query = `INSERT INTO t (n) VALUES ($1)`, `SELECT count(*) FROM t WHERE n >= $1`
	round := func(n int) {
		t.Helper()
		if _, err := db.ExecContext(ctx, insert, n); err != nil {
			t.Fatal(err)
		}
		var count int
		if err := db.QueryRowContext(ctx, query, n).Scan(&count); err != nil {
			t.Fatal(err)
		}
		if count != 1 {
			t.Fatalf("round %d: counted %d rows at or past it, want 1", n, count)
		}
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	round(0)
	first := preparedStatements(t, db)
	if first[insert] == nil || first[query] == nil {
		t.Fatalf("after one round the connection keeps %v prepared, want the insert and the query", first)
	}
	for n := 1; n <= 100; n++ {
		round(n)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	outer, err := tx.QueryContext(ctx, query, 0)
	if err != nil {
		t.Fatal(err)
	}
	var count int
	if err := tx.QueryRowContext(ctx, query, 50).Scan(&count); err != nil || count != 51 {
		t.Fatalf("the nested query: %d, %v; want 51 rows", count, err)
	}
	outer.Close()
	tx.Rollback()
	if after := preparedStatements(t, db); !maps.Equal(after, first) {
		t.Errorf("after 101 rounds the connection keeps %v prepared, want the same statements as after the first: %v", after, first)
	}
}

// preparedStatements returns the statements db's one connection keeps
// prepared, by query: the exec and the query caches together.
func preparedStatements(t *testing.T, db *sql.DB) map[string]driver.Stmt {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	out := map[string]driver.Stmt{}
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*cachingConn)
		if !ok {
			return fmt.Errorf("the connection is a %T, not one that keeps statements prepared", dc)
		}
		maps.Copy(out, c.stmts)
		for q, cq := range c.queries {
			out[q] = cq.st
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestTransactionsKeepTheirStatements: BEGIN, COMMIT and ROLLBACK are
// prepared once per connection, like the statements in between: after a
// committed and a rolled back transaction, a hundred more of each leave
// the same three prepared statements.
func TestTransactionsKeepTheirStatements(t *testing.T) {
	db, err := openSQLite(filepath.Join(t.TempDir(), "cache.db"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	round := func() {
		t.Helper()
		for _, commit := range []bool{true, false} {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			end := tx.Rollback
			if commit {
				end = tx.Commit
			}
			if err := end(); err != nil {
				t.Fatal(err)
			}
		}
	}
	round()
	first := transactionStatements(t, db)
	for i, st := range first {
		if st == nil {
			t.Fatalf("after a commit and a rollback, statement %d of BEGIN, COMMIT, ROLLBACK is not kept", i)
		}
	}
	for range 100 {
		round()
	}
	if after := transactionStatements(t, db); after != first {
		t.Errorf("after 101 rounds the connection keeps %v, want the statements of the first round: %v", after, first)
	}
}

// transactionStatements returns the BEGIN, COMMIT and ROLLBACK db's one
// connection keeps prepared.
func transactionStatements(t *testing.T, db *sql.DB) (out [3]driver.Stmt) {
	t.Helper()
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*cachingConn)
		if !ok {
			return fmt.Errorf("the connection is a %T, not one that keeps statements prepared", dc)
		}
		out = [3]driver.Stmt{c.begin, c.commit, c.rollbackStmt}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestFailedCommitLeavesNoTransactionOpen: a COMMIT SQLite refuses (a
// deferred foreign key still broken) rolls the transaction back, as
// database/sql expects: its row is gone and the connection's next
// transaction begins. So does a BEGIN whose context ended.
func TestFailedCommitLeavesNoTransactionOpen(t *testing.T) {
	db, err := openSQLite(filepath.Join(t.TempDir(), "commit.db"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for _, q := range []string{
		`CREATE TABLE parent (id INTEGER PRIMARY KEY)`,
		`CREATE TABLE child (id INTEGER PRIMARY KEY,
			parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO child (id, parent) VALUES (1, 7)`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err == nil {
		t.Fatal("a commit with a broken foreign key succeeded")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := db.BeginTx(cancelled, nil); err == nil {
		t.Fatal("a transaction began under an ended context")
	}
	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatalf("the next transaction: %v", err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM child`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("%d rows of the failed commit are there, want 0", n)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO parent (id) VALUES (7)`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("the next transaction's commit: %v", err)
	}
}

// TestBatchedStatementsDoNotEndWithTheirCaller: inside a batch's
// transaction (begun with a context that cannot end) a statement run
// with its caller's deadline reaches the driver with a context that
// cannot end either, so the driver starts no goroutine to watch it; in a
// transaction begun with a context that can end, or outside one, a
// statement keeps its own.
func TestBatchedStatementsDoNotEndWithTheirCaller(t *testing.T) {
	path := filepath.Join(t.TempDir(), "steady.db")
	registered, err := sql.Open("sqlite", "")
	if err != nil {
		t.Fatal(err)
	}
	drv := registered.Driver()
	registered.Close()
	seen := &endingStatements{}
	db := sql.OpenDB(cachingConnector{dsn: path, file: &storeFile{path: path}, drv: recordingDriver{Driver: drv, seen: seen}})
	defer db.Close()
	deadline, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := db.ExecContext(deadline, `CREATE TABLE t (n INTEGER)`); err != nil {
		t.Fatal(err)
	}
	b := newBatcher(db)
	fn := func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(deadline, `SELECT count(*) FROM t`).Scan(&n); err != nil {
			return err
		}
		_, err := tx.ExecContext(deadline, `INSERT INTO t (n) VALUES ($1)`, n)
		return err
	}
	seen.reset()
	op := &batchOp{ctx: deadline, fn: fn, done: make(chan error, 1)}
	b.commit([]*batchOp{op})
	if err := <-op.done; err != nil {
		t.Fatal(err)
	}
	if ending, all := seen.counts(); all != 2 || ending != 0 {
		t.Errorf("a batch's write ran %d statements, %d of them with a context that can end; want 2, none", all, ending)
	}
	seen.reset()
	var n int
	if err := db.QueryRowContext(deadline, `SELECT count(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if ending, all := seen.counts(); all != 1 || ending != 1 {
		t.Errorf("after the batch, a statement outside a transaction ran %d times, %d with a context that can end; want once, with it", all, ending)
	}
	seen.reset()
	if err := inTx(deadline, db, fn); err != nil {
		t.Fatal(err)
	}
	if ending, all := seen.counts(); all != 2 || ending != 2 {
		t.Errorf("a transaction under a deadline ran %d statements, %d of them with a context that can end; want 2, both", all, ending)
	}
}

// endingStatements counts the statements a recordingDriver's connections
// ran, and those given a context that can end.
type endingStatements struct {
	mu          sync.Mutex
	ending, all int
}

func (e *endingStatements) note(ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all++
	if ctx.Done() != nil {
		e.ending++
	}
}

func (e *endingStatements) reset() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ending, e.all = 0, 0
}

func (e *endingStatements) counts() (ending, all int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ending, e.all
}

// recordingDriver is the SQLite driver whose connections note the
// context each prepared statement runs under (BEGIN, COMMIT and
// ROLLBACK aside).
type recordingDriver struct {
	driver.Driver
	seen *endingStatements
}

func (d recordingDriver) Open(name string) (driver.Conn, error) {
	c, err := d.Driver.Open(name)
	if err != nil {
		return nil, err
	}
	return recordingConn{Conn: c, seen: d.seen}, nil
}

type recordingConn struct {
	driver.Conn
	seen *endingStatements
}

func (c recordingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil || strings.HasPrefix(query, "BEGIN") || query == "COMMIT" || query == "ROLLBACK" {
		return st, err
	}
	return recordingStmt{Stmt: st, seen: c.seen}, nil
}

func (c recordingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (c recordingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

type recordingStmt struct {
	driver.Stmt
	seen *endingStatements
}

func (s recordingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.seen.note(ctx)
	return s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s recordingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.seen.note(ctx)
	return s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
}
