package store

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// postgresBackend is the PostgreSQL half of backends, for tests of what
// only a server shared with other processes can do to a start.
var postgresBackend = backend{"postgres", func(t *testing.T) string { return testdb.Postgres(t) }}

// heldMigration is a store one migration short of current whose table
// that migration touches (0140 empties strangler_samples) is locked by
// another session's open transaction: a replica's long transaction, a
// backup tool's lock. release commits that transaction.
func heldMigration(t *testing.T) (dsn string, db *sql.DB, holder int, release func()) {
	t.Helper()
	ctx := context.Background()
	dsn, _, db = migratedBefore(t, postgresBackend, 140)
	t.Cleanup(func() { db.Close() })
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `LOCK TABLE strangler_samples IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&holder); err != nil {
		t.Fatal(err)
	}
	done := false
	release = func() {
		if !done {
			done = true
			if err := tx.Commit(); err != nil {
				t.Errorf("release the lock: %v", err)
			}
		}
	}
	t.Cleanup(release)
	return dsn, db, holder, release
}

// blockedFor is how long the session the holder blocks has been waiting
// in its current statement, zero when none is blocked by it.
func blockedFor(t *testing.T, db *sql.DB, holder int) time.Duration {
	t.Helper()
	var secs sql.NullFloat64
	err := db.QueryRow(`SELECT max(extract(epoch FROM now() - query_start)) FROM pg_stat_activity
		WHERE $1 = ANY (pg_blocking_pids(pid))`, holder).Scan(&secs)
	if err != nil {
		t.Fatal(err)
	}
	return time.Duration(secs.Float64 * float64(time.Second))
}

func TestStartDoesNotBoundAMigrationWaitingForALock(t *testing.T) {
	t.Parallel()
	dsn, db, holder, release := heldMigration(t)
	logs := &testkit.Logs{}
	// The caller's bound, serve's 10 s in production, ends while the
	// migration waits for the lock.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	s, err := Start(ctx, dsn, logs.Logger(slog.LevelInfo))
	if err != nil {
		t.Fatalf("Start while a migration waits for a lock: %v, want a store that finishes migrating", err)
	}
	defer s.Close()
	if err := s.Healthy(context.Background()); err == nil || !strings.Contains(err.Error(), "migration still running") {
		t.Errorf("Healthy while the migration waits: %v, want it to say the migration is running", err)
	}
	// Against the earlier release's tables, before the store is prepared.
	if _, err := s.Overrides(context.Background()); err == nil || !strings.Contains(err.Error(), "migration still running") {
		t.Errorf("a call while the migration waits: %v, want it refused as migrating", err)
	}
	lines := logs.Lines(t, "store migration still running")
	if len(lines) == 0 {
		t.Fatalf("no line says the migration is still running; the log:\n%s", logs)
	}
	if got := fmt.Sprint(lines[0]["waiting_for"]); !strings.Contains(got, "strangler_samples") {
		t.Errorf("waiting_for = %q, want the table it waits for", got)
	}
	if got, want := fmt.Sprint(lines[0]["blocked_by"]), fmt.Sprintf("pid %d (", holder); !strings.Contains(got, want) {
		t.Errorf("blocked_by = %q, want the session holding the lock (%s…)", got, want)
	}
	testkit.Eventually(t, 30*time.Second, "the migration waiting for the lock", func() bool { return blockedFor(t, db, holder) > 0 })
	release()
	testkit.Eventually(t, 60*time.Second, "the store healthy once the lock was released", func() bool { return s.Healthy(context.Background()) == nil })
	if _, err := s.Overrides(context.Background()); err != nil {
		t.Errorf("a call once migrated: %v", err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM strangler_schema_migrations WHERE version = 140`).Scan(&n); err != nil || n != 1 {
		t.Errorf("migration 0140 recorded %d times (%v), want once", n, err)
	}
}

func TestReplicasStartingWhileAMigrationWaitsMigrateOnce(t *testing.T) {
	t.Parallel()
	dsn, db, holder, release := heldMigration(t)
	logs := &testkit.Logs{}
	var stores []*Store
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		s, err := Start(ctx, dsn, logs.Logger(slog.LevelInfo))
		cancel()
		if err != nil {
			t.Fatalf("a second replica starting while the first migrates: %v, want it to wait", err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	testkit.Eventually(t, 30*time.Second, "the second replica saying it waits for the first's migration", func() bool {
		for _, l := range logs.Lines(t, "store migration still running") {
			if strings.Contains(fmt.Sprint(l["waiting_for"]), "another replica is migrating") &&
				strings.Contains(fmt.Sprint(l["blocked_by"]), "strangler migration") {
				return true
			}
		}
		return false
	})
	if blockedFor(t, db, holder) == 0 {
		t.Fatal("neither replica waits for the lock")
	}
	release()
	for i, s := range stores {
		testkit.Eventually(t, 60*time.Second, fmt.Sprintf("replica %d healthy", i), func() bool { return s.Healthy(context.Background()) == nil })
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM strangler_schema_migrations WHERE version = 140`).Scan(&n); err != nil || n != 1 {
		t.Errorf("migration 0140 recorded %d times (%v), want once", n, err)
	}
}

// TestStoppingDuringAMigrationRollsItBackOnTheServer is SIGTERM to a
// facade whose migration waits: serve closes its store.
func TestStoppingDuringAMigrationRollsItBackOnTheServer(t *testing.T) {
	t.Parallel()
	dsn, db, holder, release := heldMigration(t)
	t.Run("while Start waits", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			testkit.Eventually(t, 30*time.Second, "the migration waiting", func() bool { return blockedFor(t, db, holder) > 0 })
			cancel()
		}()
		if _, err := Start(ctx, dsn, testLogger(t)); err == nil {
			t.Fatal("Start stopped while migrating returned a store")
		}
		testkit.Eventually(t, 20*time.Second, "no session left waiting for the lock after Start returned", func() bool { return blockedFor(t, db, holder) == 0 })
	})
	t.Run("after Start returned", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s, err := Start(ctx, dsn, testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 30*time.Second, "the migration waiting", func() bool { return blockedFor(t, db, holder) > 0 })
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, 20*time.Second, "no session left waiting for the lock after the store closed", func() bool { return blockedFor(t, db, holder) == 0 })
	})
	release()
	// Nothing left to run the migration once the lock is free: never
	// half applied, and not applied by a session whose process is gone.
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM strangler_schema_migrations WHERE version = 140`).Scan(&n); err != nil || n != 0 {
		t.Errorf("migration 0140 recorded %d times (%v) by stopped starts, want none", n, err)
	}
}

func TestStartInTheBackgroundDoesNotBoundAMigrationWaitingForALock(t *testing.T) {
	t.Parallel()
	dsn, db, holder, release := heldMigration(t)
	proxy, dsn := testdb.NewProxy(t, dsn)
	proxy.Cut()
	s, err := Start(context.Background(), dsn, testLogger(t))
	if err != nil {
		t.Fatalf("Start with the server unreachable: %v", err)
	}
	defer s.Close()
	proxy.Restore()
	// Longer than any bound a start used to give one attempt (10 s): an
	// attempt cancelled at its bound starts a new statement, which
	// resets the wait.
	testkit.Eventually(t, 60*time.Second, "the migration waiting 12 s for the lock in one attempt", func() bool {
		return blockedFor(t, db, holder) > 12*time.Second
	})
	release()
	testkit.Eventually(t, 60*time.Second, "the store healthy once the lock was released", func() bool { return s.Healthy(context.Background()) == nil })
}

// TestStartOnARoleWithoutCreateSaysSo: a reachable server on which the
// store's role may not create its tables fails the start at once,
// naming the cause, rather than retrying in silence.
func TestStartOnARoleWithoutCreateSaysSo(t *testing.T) {
	t.Parallel()
	dsn := testdb.Postgres(t)
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	role := "startbound1_" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "_"))[:20] + fmt.Sprint(time.Now().UnixNano()%1e6)
	if _, err := admin.Exec(`CREATE ROLE ` + role + ` LOGIN`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", dsn)
		if err != nil {
			return
		}
		defer admin.Close()
		admin.Exec(`DROP OWNED BY ` + role)
		admin.Exec(`DROP ROLE ` + role)
	})
	var schema string
	if err := admin.QueryRow(`SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(`GRANT USAGE ON SCHEMA ` + schema + ` TO ` + role); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, u.String(), testLogger(t))
	if err == nil {
		s.Close()
		t.Fatal("Start on a role that cannot create the store's tables succeeded")
	}
	if !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "migrate") {
		t.Errorf("got %v, want it to say the migration was denied permission", err)
	}
}

// TestStartOnAnEmbeddedFileLockedByAnotherProcessWaits: an operator's
// sqlite3 shell holding the file's write lock past SQLite's busy timeout
// delays the store; it is up once the lock is let go.
func TestStartOnAnEmbeddedFileLockedByAnotherProcessWaits(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "strangler.db")
	openStore(t, "sqlite:"+path, nil).Close()
	conn := holdSQLiteWriteLock(t, path)
	logs := &testkit.Logs{}
	// A bound past SQLite's busy timeout: the migration's BEGIN gives up
	// with SQLITE_BUSY before Start does.
	ctx, cancel := context.WithTimeout(context.Background(), busyTimeout+20*time.Second)
	defer cancel()
	s, err := Start(ctx, "sqlite:"+path, logs.Logger(slog.LevelInfo))
	if err != nil {
		t.Fatalf("Start on a file another process holds locked: %v, want a store that waits", err)
	}
	defer s.Close()
	testkit.Eventually(t, 60*time.Second, "the log saying the file is locked", func() bool {
		for _, l := range logs.Lines(t, "store migration failed; retrying in the background") {
			if strings.Contains(fmt.Sprint(l["error"]), "locked") {
				return true
			}
		}
		return false
	})
	if err := s.Healthy(context.Background()); err == nil {
		t.Error("healthy while another process holds the file locked")
	}
	if _, err := conn.ExecContext(context.Background(), `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 60*time.Second, "the store healthy once the lock was let go", func() bool { return s.Healthy(context.Background()) == nil })
}

// TestStartOnAReadOnlyDirectorySaysSo: an embedded store whose directory
// cannot take its file (a read-only file system: a container's
// readOnlyRootFilesystem) fails the start at once, naming the file and
// the cause, where it was retried for ever as an unreachable server with
// SQLite's "unable to open database file".
func TestStartOnAReadOnlyDirectorySaysSo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("a read-only tmpfs needs root: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	path := filepath.Join(dir, "strangler.db")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, "sqlite:"+path, testLogger(t))
	if err == nil {
		s.Close()
		t.Fatal("Start on a read-only directory returned a store that waits")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "read-only file system") {
		t.Errorf("got %v, want the file and the cause", err)
	}
}

// holdSQLiteWriteLock takes the embedded file's write lock from another
// connection, as a sqlite3 shell's BEGIN IMMEDIATE does, until the test
// ends or the returned connection rolls back.
func holdSQLiteWriteLock(t *testing.T, path string) *sql.Conn {
	t.Helper()
	other, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.ExecContext(context.Background(), `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.ExecContext(context.Background(), `ROLLBACK`) })
	return conn
}
