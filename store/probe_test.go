package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"strangler/internal/testdb"
)

// TestTheWriteProbePassesOnAStoreThatTakesWrites: a healthy store of
// either kind passes the probe, and the probe leaves the journal as it was.
func TestTheWriteProbePassesOnAStoreThatTakesWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openStore(t, b.fresh(t), newClock())
		if err := s.ProbeWrites(context.Background()); err != nil {
			t.Errorf("ProbeWrites: %v, want nil", err)
		}
	})
}

// TestTheWriteProbeFailsOnAReadOnlyPostgreSQL: a server that takes no
// writes (here a database set read-only, as a standby is) fails the
// probe, naming why, though nothing the probe does changes a row.
func TestTheWriteProbeFailsOnAReadOnlyPostgreSQL(t *testing.T) {
	base := os.Getenv("STRANGLER_TEST_POSTGRES")
	if base == "" {
		base = testdb.DefaultPostgres
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	name := fmt.Sprintf("outage5_probe_%d", time.Now().UnixNano())
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		testdb.Unavailable(t, "creating a database of its own on the test PostgreSQL", err)
	}
	// Dropped once the store has closed (cleanups run last first); a
	// deferred Close would end the connection before the DROP.
	t.Cleanup(func() {
		if _, err := admin.ExecContext(ctx, "DROP DATABASE "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping the test's database %s: %v", name, err)
		}
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	s := openStore(t, u.String(), newClock())
	if err := s.ProbeWrites(ctx); err != nil {
		t.Fatalf("ProbeWrites before the database is read-only: %v", err)
	}
	// New sessions are read-only; the store's are ended, so it reconnects.
	if _, err := admin.ExecContext(ctx, "ALTER DATABASE "+name+" SET default_transaction_read_only = on"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ExecContext(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name); err != nil {
		t.Fatal(err)
	}
	err = s.ProbeWrites(ctx)
	if err == nil || !strings.Contains(err.Error(), "read-only transaction") {
		t.Errorf("ProbeWrites on a read-only database: %v, want it refused as read-only", err)
	}
}

// TestTheWriteProbeWaitsForTheWriteLockOnSQLite: another session holding
// the embedded store's write lock fails the probe when its time is up, as
// it would a client's write.
func TestTheWriteProbeWaitsForTheWriteLockOnSQLite(t *testing.T) {
	dsn := backends()[0].fresh(t)
	s := openStore(t, dsn, newClock())
	holdSQLiteWriteLock(t, strings.TrimPrefix(dsn, "sqlite:"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.ProbeWrites(ctx); err == nil {
		t.Error("ProbeWrites with another session holding the write lock: nil, want refused")
	}
}

// TestTheWriteProbeFailsOnASQLiteFileItCannotWrite: an embedded store
// whose files the system stops letting it write (made immutable here; a
// read-only remount or a failing disk fail the same way) refuses every
// commit, and the probe must say so. It wrote nothing, so it passed, and
// with no client writing for 30 s /readyz said ready and
// strangler_store_up 1 while every dual write was refused.
func TestTheWriteProbeFailsOnASQLiteFileItCannotWrite(t *testing.T) {
	dsn := backends()[0].fresh(t)
	s := openStore(t, dsn, newClock())
	ctx := context.Background()
	if err := s.ProbeWrites(ctx); err != nil {
		t.Fatalf("ProbeWrites on a healthy store: %v", err)
	}
	path := strings.TrimPrefix(dsn, "sqlite:")
	files := []string{path, path + "-wal"}
	chattr := func(flag string) error {
		for _, f := range files {
			if out, err := exec.Command("chattr", flag, f).CombinedOutput(); err != nil {
				return fmt.Errorf("chattr %s %s: %v %s", flag, f, err, out)
			}
		}
		return nil
	}
	if err := chattr("+i"); err != nil {
		chattr("-i")
		if os.Getenv("STRANGLER_REQUIRE_DB") == "1" {
			t.Fatalf("making the store's files immutable (needs root and a file system that has the flag): %v", err)
		}
		t.Skipf("making the store's files immutable needs root and a file system that has the flag: %v", err)
	}
	t.Cleanup(func() { chattr("-i") })
	if err := s.ProbeWrites(ctx); err == nil {
		t.Error("ProbeWrites on files the system will not let it write: nil, want refused")
	}
	if err := chattr("-i"); err != nil {
		t.Fatal(err)
	}
	if err := s.ProbeWrites(ctx); err != nil {
		t.Errorf("ProbeWrites once the files can be written again: %v, want nil", err)
	}
}
