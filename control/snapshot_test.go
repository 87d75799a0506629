package control

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config"
	"strangler/config/configfile"
	"strangler/domain"
	"strangler/shadow"
	"strangler/stats"
	"strangler/store"
)

func TestSnapshotRoundTrip(t *testing.T) {
	dir := t.TempDir()
	snap := NewSnapshot(filepath.Join(dir, "flags.json"), "postgres://u:xxxxx@db/state")
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	want := map[string]domain.Override{
		"get-patient": {Route: "get-patient", Mode: "fallback", Percent: pct(25), Version: 3, Actor: "alice", Reason: "25% of clients", UpdatedAt: at.Add(-time.Hour)},
		"list":        {Route: "list", Mode: "legacy", Version: 1, Actor: "guard", Reason: "modern failed", UpdatedAt: at.Add(-time.Minute)},
	}
	if err := snap.Save(want, at); err != nil {
		t.Fatal(err)
	}
	got, savedAt, err := snap.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !savedAt.Equal(at) {
		t.Errorf("saved at: got %v, want %v", savedAt, at)
	}
	if !sameOverrides(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("the directory holds %d files, want only the snapshot (no temporary file left)", len(entries))
	}

	t.Run("a later save replaces it whole", func(t *testing.T) {
		if err := snap.Save(map[string]domain.Override{}, at.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		got, _, err := snap.Load()
		if err != nil || len(got) != 0 {
			t.Errorf("got %v %v, want no overrides", got, err)
		}
	})
}

func TestSnapshotsThatCannotBeServed(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flags.json")
	snap := NewSnapshot(path, "sqlite:/var/lib/strangler.db")
	if _, _, err := snap.Load(); err != errNoSnapshot {
		t.Errorf("no file: got %v, want errNoSnapshot", err)
	}
	if err := NewSnapshot(path, "sqlite:/elsewhere.db").Save(map[string]domain.Override{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, content, want string }{
		{"another store's", "", "taken of the store sqlite:/elsewhere.db"},
		{"damaged", `{"version":1,"store":"sqlite:/var/lib/strangler.db","saved_at":"2026-11-01T12:00:00Z","overrides":{`, "damaged"},
		{"an unknown mode", `{"version":1,"store":"sqlite:/var/lib/strangler.db","saved_at":"2026-11-01T12:00:00Z","overrides":{"a":{"mode":"sideways","version":1}}}`, `mode "sideways"`},
		{"no time", `{"version":1,"store":"sqlite:/var/lib/strangler.db","overrides":{}}`, "no saved_at"},
		{"a later version", `{"version":2,"store":"sqlite:/var/lib/strangler.db","saved_at":"2026-11-01T12:00:00Z"}`, "unknown version 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.content != "" {
				if err := os.WriteFile(path, []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, _, err := snap.Load()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
	// A state_snapshot naming a device was read until memory ran out.
	t.Run("a device", func(t *testing.T) {
		_, _, err := NewSnapshot("/dev/zero", "sqlite:/var/lib/strangler.db").Load()
		if want := "/dev/zero is a device: want a regular file"; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error saying %q", err, want)
		}
	})
}

// A state_snapshot naming a named pipe or a directory is refused by name
// when saved, and left as it was: the rename over it replaced an
// operator's pipe with a regular file without a word.
func TestSnapshotSavedOverASpecialFileIsRefused(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "flags.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	for path, want := range map[string]string{
		fifo: fifo + " is a named pipe (FIFO): want a regular file",
		dir:  dir + " is a directory: want a regular file",
	} {
		err := NewSnapshot(path, "sqlite:/var/lib/strangler.db").Save(map[string]domain.Override{}, time.Now())
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error saying %q", err, want)
		}
	}
	if fi, err := os.Stat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the named pipe is no longer one: %v, %v", fi.Mode(), err)
	}
}

// unreachableStore is a real PostgreSQL store whose server refuses
// connections: what a replica gets when it starts during an outage.
func unreachableStore(t *testing.T) *store.Store {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := store.Start(ctx, "postgres://strangler@"+addr+"/state?connect_timeout=2", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// coldStart is a control plane started while its store is unreachable.
type coldStart struct {
	*httptest.Server
	flags *Flags

	mu      sync.Mutex
	applied *config.Config
}

func startCold(t *testing.T, snap *Snapshot) *coldStart {
	t.Helper()
	cfg, err := configfile.Parse("test.yaml", []byte(`
admin: { token: "`+aliceToken+`" }
backends:
  legacy: { url: "http://legacy.internal" }
  modern: { url: "http://modern.internal" }
`+testRoutes), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	st := unreachableStore(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := &coldStart{}
	c.flags, err = NewFlags(context.Background(), cfg, st, snap, &Reports{Counts: st}, applyFunc(func(cfg *config.Config) error {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.applied = cfg
		return nil
	}), log, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	tokens := &Tokens{}
	tokens.Set(cfg.Admin.AdminTokens())
	readiness := &Readiness{}
	select {
	case <-c.flags.Known():
		readiness.Ready() // as serve does
	default:
	}
	c.Server = httptest.NewServer(NewAdmin(AdminDeps{
		Gatherer: prometheus.NewRegistry(), Readiness: readiness, Flags: c.flags, Tokens: tokens, Reports: &Reports{Counts: st},
		Audit: st, Repairs: st, Samples: shadow.NewMemorySamples(10), Noise: func(string) []string { return nil },
		Live: stats.NewCounters(), Log: log,
	}))
	t.Cleanup(c.Close)
	return c
}

func (c *coldStart) served(route string) domain.Mode {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.applied.Routes {
		if r.Name == route {
			return r.Mode
		}
	}
	return ""
}

func (c *coldStart) readyz(t *testing.T) (int, string) {
	t.Helper()
	resp, err := http.Get(c.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestStartWithoutTheStore(t *testing.T) {
	t.Run("with a snapshot: ready, degraded, serving the snapshot's flags", func(t *testing.T) {
		snap := NewSnapshot(filepath.Join(t.TempDir(), "flags.json"), "postgres://strangler@127.0.0.1/state")
		// The file says fallback; the operators had flipped it to modern.
		savedAt := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		c := startColdWithSnapshot(t, snap, map[string]domain.Override{
			"get-patient": {Route: "get-patient", Mode: "modern", Version: 2, Actor: "alice", Reason: "all in", UpdatedAt: savedAt},
		}, savedAt)
		if got, want := c.served("get-patient"), domain.ModeModern; got != want {
			t.Errorf("get-patient: got %s, want %s, the snapshot's", got, want)
		}
		if rf, _ := c.flags.Get("get-patient"); rf.Version != 2 {
			t.Errorf("get-patient's ETag: got %d, want 2, the snapshot's version of its override", rf.Version)
		}
		code, body := c.readyz(t)
		if want := "ready (degraded: store unreachable, serving snapshot from 2026-11-01T12:00:00Z)\n"; code != http.StatusOK || body != want {
			t.Errorf("/readyz: got %d %q, want 200 %q", code, body, want)
		}
	})
	t.Run("without a snapshot: not ready, waiting for the state store", func(t *testing.T) {
		snap := NewSnapshot(filepath.Join(t.TempDir(), "flags.json"), "")
		c := startCold(t, snap)
		select {
		case <-c.flags.Known():
			t.Error("the flags are known without the store or a snapshot")
		default:
		}
		if code, body := c.readyz(t); code != http.StatusServiceUnavailable || body != "waiting for the state store\n" {
			t.Errorf("/readyz: got %d %q, want 503 %q", code, body, "waiting for the state store\n")
		}
	})
	t.Run("with another store's snapshot: not ready", func(t *testing.T) {
		snap := NewSnapshot(filepath.Join(t.TempDir(), "flags.json"), "postgres://strangler@other/state")
		if err := snap.Save(map[string]domain.Override{
			"get-patient": {Route: "get-patient", Mode: "modern", Version: 1, Actor: "alice", Reason: "x", UpdatedAt: time.Now()},
		}, time.Now()); err != nil {
			t.Fatal(err)
		}
		c := startCold(t, NewSnapshot(snap.Path(), "postgres://strangler@mine/state"))
		if got, want := c.served("get-patient"), domain.ModeFallback; got != want {
			t.Errorf("get-patient: got %s, want %s, the file's: another store's flags are never served", got, want)
		}
		if code, _ := c.readyz(t); code != http.StatusServiceUnavailable {
			t.Errorf("/readyz: got %d, want 503", code)
		}
	})
}

// startColdWithSnapshot saves overrides in snap, taken at savedAt, and
// starts a control plane on it without its store.
func startColdWithSnapshot(t *testing.T, snap *Snapshot, overrides map[string]domain.Override, savedAt time.Time) *coldStart {
	t.Helper()
	if err := snap.Save(overrides, savedAt); err != nil {
		t.Fatal(err)
	}
	return startCold(t, snap)
}

func TestSnapshotFollowsEveryChangeLearned(t *testing.T) {
	cfg, err := configfile.Parse("test.yaml", []byte(`
backends:
  legacy: { url: "http://legacy.internal" }
  modern: { url: "http://modern.internal" }
`+testRoutes), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "s.db")
	ctx := context.Background()
	st, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	snap := NewSnapshot(filepath.Join(dir, "flags.json"), dsn)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	flags, err := NewFlags(ctx, cfg, st, snap, &Reports{Counts: st}, applyFunc(func(*config.Config) error { return nil }), log, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	modeIn := func(route string) string {
		t.Helper()
		o, _, err := snap.Load()
		if err != nil {
			t.Fatalf("the snapshot: %v", err)
		}
		return string(o[route].Mode)
	}
	if got := modeIn("create-patient"); got != "" {
		t.Errorf("after the first read: got %q in the snapshot, want no override", got)
	}

	mode := domain.ModeDualWrite
	if _, err := flags.Apply(ctx, Flip{Route: "create-patient", Actor: "alice", Reason: "copy writes", Mode: &mode}); err != nil {
		t.Fatal(err)
	}
	if got := modeIn("create-patient"); got != "dual-write" {
		t.Errorf("after a flip on this replica: got %q in the snapshot, want dual-write", got)
	}

	// Another replica clears it and flips it again.
	other, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	cleared, _, err := other.ClearOverride(ctx, "create-patient", 1, domain.AuditEntry{Actor: "bob", Action: "clear", Route: "create-patient"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.SetOverride(ctx, domain.Override{Route: "create-patient", Mode: "modern", Actor: "bob", Reason: "done"}, cleared,
		domain.AuditEntry{Actor: "bob", Action: "flip", Route: "create-patient"}); err != nil {
		t.Fatal(err)
	}
	flags.resync(ctx)
	if got := modeIn("create-patient"); got != "modern" {
		t.Errorf("after another replica's clear and flip: got %q in the snapshot, want modern", got)
	}
	if rf, _ := flags.Get("create-patient"); rf.Mode != domain.ModeModern {
		t.Errorf("served: got %s, want modern", rf.Mode)
	}
}
