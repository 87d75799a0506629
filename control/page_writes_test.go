package control

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/dualwrite"
	"strangler/store"
)

// TestTheStatusPageSaysWhenTheStoreRefusesWrites: with the embedded
// store's file removed, the store refuses every dual write until a
// restart; the status page says so, as /readyz does, instead of showing
// nothing wrong.
func TestTheStatusPageSaysWhenTheStoreRefusesWrites(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	writes := dualwrite.NewOutcomes(st, nil, prometheus.NewRegistry(), slog.New(slog.DiscardHandler))
	h := newPageAdminWith(t, st, &clock{t: time.Date(2026, 11, 1, 12, 30, 0, 0, time.UTC)}, writes)
	h.login(t, pageToken)
	const banner = "The state store has refused writes since"
	if _, body := h.send(t, "GET", "/", nil); strings.Contains(body, banner) {
		t.Fatal("the status page says the store refuses writes while it takes them")
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	resp, body := h.send(t, "GET", "/", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, banner) {
		t.Errorf("the status page with the store's file removed: %d, want 200 saying %q", resp.StatusCode, banner)
	}
}
