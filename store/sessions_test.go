package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)
		const idle = 8 * time.Hour
		create := func(t *testing.T, id string) {
			t.Helper()
			now := clk.Now()
			err := s.CreateSession(ctx, Session{ID: id, Actor: "alice", Binding: "b-" + id}, now, idle)
			if err != nil {
				t.Fatal(err)
			}
		}
		use := func(id string) (Session, error) {
			return s.UseSession(ctx, id, clk.Now(), idle)
		}

		t.Run("a session is found by its id and its use recorded", func(t *testing.T) {
			create(t, "s1")
			created := clk.Now()
			clk.Advance(time.Hour)
			got, err := use("s1")
			if err != nil {
				t.Fatal(err)
			}
			want := Session{ID: "s1", Actor: "alice", Binding: "b-s1", CreatedAt: created, LastSeen: clk.Now()}
			if b.name == "postgres" {
				// On the server's clock, which the test clock moves only
				// relative to the stored times: an hour between the two.
				if d := got.LastSeen.Sub(got.CreatedAt); d < time.Hour || d > time.Hour+time.Minute {
					t.Errorf("last seen %v after created, want an hour", d)
				}
				want.CreatedAt, want.LastSeen = got.CreatedAt, got.LastSeen
			}
			if got != want {
				t.Errorf("got %+v, want %+v", got, want)
			}
		})
		t.Run("a session used within the idle time stays; one idle longer has expired", func(t *testing.T) {
			// Exactly idle since the last use: still valid.
			wait := idle
			if b.name == "postgres" {
				wait -= time.Minute // the server's clock moves on meanwhile
			}
			clk.Advance(wait)
			if _, err := use("s1"); err != nil {
				t.Fatalf("after exactly %v idle: %v", idle, err)
			}
			clk.Advance(idle + time.Microsecond)
			if _, err := use("s1"); !errors.Is(err, ErrNotFound) {
				t.Errorf("after more than %v idle: got %v, want ErrNotFound", idle, err)
			}
		})
		t.Run("creating a session deletes the expired ones", func(t *testing.T) {
			create(t, "s2")
			var n int
			if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM strangler_sessions`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("%d sessions stored, want only the new one", n)
			}
		})
		t.Run("a deleted session is gone, and deleting it again is no error", func(t *testing.T) {
			for range 2 {
				if err := s.DeleteSession(ctx, "s2"); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := use("s2"); !errors.Is(err, ErrNotFound) {
				t.Errorf("got %v, want ErrNotFound", err)
			}
		})
	})
}

// TestAnUnknownSessionCostsNoWrite: the status page looks up whatever
// session cookie a caller sends. An id that names no live session (made
// up, or expired) is answered from a read: while another session holds
// the write lock on the sessions (SQLite's on the file, a PostgreSQL
// lock that lets readers in), it is still answered at once as not
// found. An UPDATE of no row took the lock, so every made-up cookie
// waited behind, and queued, the journal's writes.
func TestAnUnknownSessionCostsNoWrite(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		dsn := b.fresh(t)
		s := openStore(t, dsn, clk)
		const idle = 8 * time.Hour
		if err := s.CreateSession(ctx, Session{ID: "old", Actor: "alice", Binding: "b"}, clk.Now(), idle); err != nil {
			t.Fatal(err)
		}
		clk.Advance(idle + time.Minute)

		driver, lock := "pgx", `BEGIN; LOCK TABLE strangler_sessions IN SHARE MODE`
		if b.name == "sqlite" {
			driver, lock, dsn = "sqlite", `BEGIN IMMEDIATE`, strings.TrimPrefix(dsn, "sqlite:")
		}
		other, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		conn, err := other.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		for stmt := range strings.SplitSeq(lock, "; ") {
			if _, err := conn.ExecContext(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		defer conn.ExecContext(ctx, `ROLLBACK`)

		for _, id := range []string{"made-up", "old"} {
			// Far shorter than a wait for the lock (SQLite's busy timeout
			// is 10 s; PostgreSQL waits for good), far longer than a read.
			ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err := s.UseSession(ctx, id, clk.Now(), idle)
			cancel()
			if !errors.Is(err, ErrNotFound) {
				t.Errorf("UseSession(%s) while the sessions are locked for writing: %v, want ErrNotFound without waiting", id, err)
			}
		}
	})
}
