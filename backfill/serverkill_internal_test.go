package backfill

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"strangler/internal/testdb"
)

// TestAConnectionTheServerEndsCountsAsLost: a DBA ending a backfill's
// session (pg_terminate_backend, KILL), or the server shutting down
// (which ends every session the same way), answers with a server error,
// not a broken socket. The run must resume from its checkpoint as for any
// lost connection, not stop the table. The errors are the real servers'.
func TestAConnectionTheServerEndsCountsAsLost(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("PostgreSQL pg_terminate_backend", func(t *testing.T) {
		dsn := testdb.Postgres(t)
		victim, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer victim.Close(context.Background())
		var pid uint32
		if err := victim.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		dba, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer dba.Close(context.Background())
		lost := make(chan error, 1)
		go func() {
			_, err := victim.Exec(ctx, "SELECT pg_sleep(30)")
			lost <- err
		}()
		waitFor(t, ctx, func() bool {
			var n int
			err := dba.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1 AND query LIKE '%pg_sleep%'", pid).Scan(&n)
			return err == nil && n == 1
		})
		if _, err := dba.Exec(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
			t.Fatal(err)
		}
		checkLost(t, <-lost)
	})

	for _, kill := range []string{"KILL QUERY", "KILL CONNECTION"} {
		t.Run("MariaDB "+kill, func(t *testing.T) {
			db, err := sql.Open("mysql", testdb.MySQL(t))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			victim, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer victim.Close()
			var id int64
			if err := victim.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
				t.Fatal(err)
			}
			lost := make(chan error, 1)
			go func() {
				var v int
				lost <- victim.QueryRowContext(ctx, "SELECT SLEEP(30) + count(*) FROM information_schema.tables").Scan(&v)
			}()
			waitFor(t, ctx, func() bool {
				var n int
				err := db.QueryRowContext(ctx, "SELECT count(*) FROM information_schema.processlist WHERE id = ? AND info LIKE '%SLEEP(30)%'", id).Scan(&n)
				return err == nil && n == 1
			})
			if _, err := db.ExecContext(ctx, kill+" ?", id); err != nil {
				t.Fatal(err)
			}
			checkLost(t, <-lost)
		})
	}
}

func checkLost(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("the killed statement succeeded: the test proves nothing")
	}
	if !connectionLost(err) {
		t.Errorf("%v (%T) is not taken for a lost connection: the table would stop instead of resuming", err, err)
	}
}

func waitFor(t *testing.T, ctx context.Context, ok func() bool) {
	t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatal("timed out")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
