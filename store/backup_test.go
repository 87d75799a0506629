package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"strangler/domain"
)

func TestBackupWhileTheStoreIsWritten(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "state.db")
	clk := newClock()
	s := openStore(t, dsn, clk)
	journal(t, s, "pending-1", "/patients/1")
	// A delivery under way: its lease means nothing in a copy.
	if _, ok, err := s.ClaimRepair(ctx, "pending-1", "worker-of-the-original", time.Hour); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if err := s.BeginWrite(ctx, intent("sent-1", "/patients/2"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetOverride(ctx, domain.Override{Route: "get", Mode: "modern"}, 0, flip("get", "legacy", "modern")); err != nil {
		t.Fatal(err)
	}

	// A facade keeps writing while the backup runs.
	var written atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id := fmt.Sprintf("busy-%d", i)
			if s.BeginWrite(ctx, intent(id, "/patients/busy"), time.Minute) == nil &&
				s.RecordOutcome(ctx, id, domain.Outcome{Status: 200}) == nil {
				written.Add(1)
			}
		}
	})
	for written.Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	out := filepath.Join(dir, "backup.db")
	err := Backup(ctx, dsn, out)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}

	rep, err := Verify(ctx, out)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	// The copy may catch one busy write between its two commits, sent.
	if sent := rep.Repairs[domain.StateSent]; rep.Overrides != 1 || rep.AuditEntries != 1 || sent < 1 || sent > 2 {
		t.Errorf("got %+v, want 1 override, 1 audit entry, 1 sent write (2 with a busy one)", rep)
	}
	if n := rep.Repairs[domain.StatePending] - 1; n < 20 || int64(n) > written.Load() {
		t.Errorf("pending busy writes in the backup: got %d, want from 20 to %d", n, written.Load())
	}
	if rep.SchemaVersion != rep.KnownVersion || rep.SchemaVersion == 0 {
		t.Errorf("schema version: got %d, want %d", rep.SchemaVersion, rep.KnownVersion)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), "partial") {
			t.Errorf("a temporary file is left: %s", e.Name())
		}
	}

	t.Run("a backup is a store a facade opens, and delivers from at once", func(t *testing.T) {
		b := openStore(t, "sqlite:"+out, clk)
		if got := state(t, b, "pending-1"); got != domain.StatePending {
			t.Errorf("pending-1 in the backup: got %s, want pending", got)
		}
		if r, err := b.GetRepair(ctx, "pending-1", false); err != nil || r.LeaseOwner != "" {
			t.Errorf("pending-1 in the backup: leased to %q (%v), want no lease: its worker delivers from the original", r.LeaseOwner, err)
		}
		if r, err := b.GetRepair(ctx, "sent-1", false); err != nil || r.LeaseUntil.IsZero() {
			t.Errorf("sent-1 in the backup: lease until %v (%v), want kept: once it passes the write is unknown", r.LeaseUntil, err)
		}
	})
	t.Run("an existing file is not overwritten", func(t *testing.T) {
		if err := Backup(ctx, dsn, out); err == nil || !strings.Contains(err.Error(), "exists") {
			t.Errorf("got %v, want an error saying it exists", err)
		}
	})
}

func TestBackupRefusals(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	out := filepath.Join(dir, "backup.db")
	if err := Backup(ctx, "sqlite:"+filepath.Join(dir, "missing.db"), out); err == nil {
		t.Error("a backup of a store that does not exist: got no error")
	}
	if _, err := os.Stat(filepath.Join(dir, "missing.db")); err == nil {
		t.Error("a backup of a missing store created it")
	}
	if err := Backup(ctx, "postgres://db/state", out); err == nil || !strings.Contains(err.Error(), "pg_dump") {
		t.Errorf("a backup of PostgreSQL: got %v, want a pointer to its own tools", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused backup left a file")
	}
}

func TestVerifyFindsDamage(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "state.db")
	s := openStore(t, dsn, newClock())
	for i := range 300 {
		journal(t, s, fmt.Sprintf("w-%d", i), fmt.Sprintf("/patients/%d", i))
	}
	good := filepath.Join(dir, "good.db")
	if err := Backup(ctx, dsn, good); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	damage := func(name string, f func([]byte) []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, f(append([]byte(nil), b...)), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	const page = 4096
	for _, tc := range []struct{ name, path, want string }{
		{"a page overwritten", damage("scribbled.db", func(b []byte) []byte {
			copy(b[len(b)-3*page:], strings.Repeat("\xff", page))
			return b
		}), "damaged"},
		{"cut short", damage("truncated.db", func(b []byte) []byte { return b[:len(b)/2] }), "damaged"},
		{"not a database", damage("text.db", func([]byte) []byte { return []byte(strings.Repeat("hello ", 1000)) }), "damaged"},
		{"not a store", func() string {
			path := filepath.Join(dir, "other.db")
			db, err := openSQLite(path, "")
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if _, err := db.Exec(`CREATE TABLE things (id INTEGER)`); err != nil {
				t.Fatal(err)
			}
			return path
		}(), "not a strangler store"},
		{"missing", filepath.Join(dir, "nothing.db"), "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Verify(ctx, tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
	if rep, err := Verify(ctx, good); err != nil || rep.Repairs[domain.StatePending] != 300 {
		t.Errorf("the undamaged backup: got %+v %v, want 300 pending writes", rep, err)
	}
}
