package testdb

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestClusterFailsOverWithoutLosingACommit(t *testing.T) {
	c := NewCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.DSN())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2), (3)`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	c.StopPrimary()
	if conn, err := pgx.Connect(ctx, c.DSN()); err == nil {
		conn.Close(ctx)
		t.Fatal("with the primary stopped and the standby not promoted, a read-write connection was made")
	}
	c.Promote()
	conn, err = pgx.Connect(ctx, c.DSN())
	if err != nil {
		t.Fatalf("after the promotion: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 3 {
		t.Errorf("rows on the new primary: got %d %v, want 3", n, err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO t VALUES (4)`); err != nil {
		t.Errorf("a write on the new primary: %v", err)
	}
}
