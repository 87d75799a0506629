package dualwrite

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestAStoreThatRefusesWritesUntilARestartStaysFailing: with the embedded
// store's file removed, WritesFailing says the store refuses writes at
// once, before any write was tried, and still failingWindow after the
// last refused write, with no write since: it refuses them until the
// facade restarts, and /readyz and strangler_store_up must say so.
func TestAStoreThatRefusesWritesUntilARestartStaysFailing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, "sqlite:"+filepath.Join(dir, "strangler.db"))
	j := NewOutcomes(st, nil, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	now := time.Now()
	j.now = func() time.Time { return now }
	if since, _ := j.WritesFailing(); !since.IsZero() {
		t.Fatalf("WritesFailing with the file in place: since %v, want zero", since)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if since, _ := j.WritesFailing(); since.IsZero() {
		t.Error("WritesFailing with the file removed, before any write: zero, want failing")
	}
	if err := j.BeginWrite(context.Background(), put("w1", "a", `{}`), time.Minute); err == nil {
		t.Fatal("a write with the file removed was taken")
	}
	now = now.Add(failingWindow + time.Second)
	if since, _ := j.WritesFailing(); since.IsZero() {
		t.Errorf("WritesFailing %v after the last refused write, none since: zero, want failing", failingWindow+time.Second)
	}
}
