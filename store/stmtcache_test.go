package store

import (
	"context"
	"path/filepath"
	"testing"
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
