package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"strangler/domain"
)

// TestAnErasedWriteLeavesNoByteInTheSQLiteFiles: without
// store_encryption, a write the secondary applied is erased from the
// database file, not only from the rows a query sees (SQLite leaves
// deleted content in free space otherwise), and from its write-ahead log
// once that is checkpointed.
func TestAnErasedWriteLeavesNoByteInTheSQLiteFiles(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	path := filepath.Join(t.TempDir(), "s.db")
	s := openWith(t, "sqlite:"+path, clk)
	for _, id := range []string{"a", "b", "c"} {
		if err := s.BeginWrite(ctx, canaryIntent(id), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordOutcome(ctx, id, domain.Outcome{Status: 201, Location: "/patients/" + canary, PrimaryID: canary}); err != nil {
			t.Fatal(err)
		}
	}
	// One resource: its writes are delivered one after another.
	for range 3 {
		rs, err := s.ClaimRepairs(ctx, "worker", 10, time.Minute)
		if err != nil || len(rs) != 1 {
			t.Fatalf("claimed %v, %v", ids(rs), err)
		}
		if err := s.CompleteRepair(ctx, rs[0].ID, "worker"); err != nil {
			t.Fatal(err)
		}
	}
	// SQLite's automatic checkpoint, after a thousand pages, then the
	// next write, which starts the log anew.
	if _, err := s.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
		t.Fatal(err)
	}
	later := canaryIntent("later")
	later.Target, later.Resource, later.ResourceView, later.Body, later.Header = "/other", "/other", "/other", []byte("{}"), nil
	if err := s.BeginWrite(ctx, later, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(path + suffix)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if n := bytes.Count(b, []byte(canary)); n > 0 {
			t.Errorf("%s holds the canary %d times after every write was erased", filepath.Base(path+suffix), n)
		}
	}
}

// TestTheSQLiteFilesAreTheOwnersAlone: a new store's file, its
// write-ahead log and its index, and a backup of it, which hold dual
// writes' requests until delivered, are readable by their owner alone,
// whatever the umask lets a new file be. SQLite made them 0644 before.
func TestTheSQLiteFilesAreTheOwnersAlone(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	s := openWith(t, "sqlite:"+path, newClock())
	if err := s.BeginWrite(ctx, canaryIntent("a"), time.Minute); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(dir, "backup.db")
	if err := Backup(ctx, "sqlite:"+path, backup); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm", backup} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s is %v: other users may read the requests in it", filepath.Base(p), perm)
		}
	}
}
