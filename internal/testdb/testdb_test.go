package testdb

import (
	"context"
	"database/sql"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestEachTestGetsItsOwnEmptyDatabase(t *testing.T) {
	ctx := context.Background()
	t.Run("PostgreSQL", func(t *testing.T) {
		a, b := Postgres(t), Postgres(t)
		ca, err := pgx.Connect(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		defer ca.Close(ctx)
		if _, err := ca.Exec(ctx, "CREATE TABLE t (id int)"); err != nil {
			t.Fatal(err)
		}
		cb, err := pgx.Connect(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		defer cb.Close(ctx)
		if _, err := cb.Exec(ctx, "SELECT * FROM t"); err == nil {
			t.Error("a table created in one test database is visible in another")
		}
	})
	t.Run("MySQL", func(t *testing.T) {
		a, b := MySQL(t), MySQL(t)
		da, _ := sql.Open("mysql", a)
		defer da.Close()
		if _, err := da.Exec("CREATE TABLE t (id int)"); err != nil {
			t.Fatal(err)
		}
		db, _ := sql.Open("mysql", b)
		defer db.Close()
		if _, err := db.Exec("SELECT * FROM t"); err == nil {
			t.Error("a table created in one test database is visible in another")
		}
	})
}
