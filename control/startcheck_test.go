package control

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"strangler/config"
	"strangler/config/configfile"
	"strangler/domain"
	"strangler/internal/testkit"
	"strangler/store"
)

// downStore is a state store that does not answer while down, and
// whose journal does not answer while journalDown; reads counts the
// reads of the overrides it was asked for.
type downStore struct {
	*store.Store
	down, journalDown atomic.Bool
	reads             atomic.Int64
}

var errDown = errors.New("connection refused")

func (d *downStore) RouteFlags(ctx context.Context, routes []string) (map[string]domain.Override, map[string]int64, map[string]int64, error) {
	d.reads.Add(1)
	if d.down.Load() {
		return nil, nil, nil, errDown
	}
	return d.Store.RouteFlags(ctx, routes)
}

func (d *downStore) OpenPrimaries(ctx context.Context) (map[string]map[domain.Backend]int, error) {
	if d.down.Load() || d.journalDown.Load() {
		return nil, errDown
	}
	return d.Store.OpenPrimaries(ctx)
}

// TestAStartWithoutTheStoreChecksTheJournalOnceItAnswers: a replica
// started while the store is down serves its snapshot without reading
// the journal, so it cannot check the file against the dual writes still
// owed. It says so at start, and makes the check once the store answers:
// here the file sends put-item's writes straight to modern while one is
// still owed there, and Run stops with the error a start with the store
// exits with, naming the file and the route. Before, the check was never
// made: the replica went on sending writes ahead of the journaled one.
func TestAStartWithoutTheStoreChecksTheJournalOnceItAnswers(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	w := domain.Intent{ID: "w1", Route: "put-item", Resource: "items/1", Method: http.MethodPut, Target: "/items/1",
		Header: http.Header{}, Body: []byte(`{}`), Primary: domain.Legacy}
	if err := st.BeginWrite(ctx, w, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordOutcome(ctx, "w1", domain.Outcome{Status: 200}); err != nil {
		t.Fatal(err)
	}
	f, ds, logs, err := startWithoutStore(t, dir, st, false)
	if err != nil {
		t.Fatalf("a start without the store, with a snapshot, is refused: %v", err)
	}
	if !strings.Contains(logs.text(), "not yet checked against them") {
		t.Errorf("the start does not say the journal was not checked:\n%s", logs.text())
	}
	f.resyncEvery = 10 * time.Millisecond
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Run(runCtx) }()
	ds.down.Store(false)
	var runErr error
	testkit.Eventually(t, 10*time.Second, "Run to stop on the check", func() bool {
		select {
		case runErr = <-done:
			return true
		default:
			return false
		}
	})
	if msg := runErr.Error(); !strings.Contains(msg, "strangler.yaml") || !strings.Contains(msg, "routes[0] (put-item) would send writes straight to modern, ahead of 1 dual write owed there") {
		t.Errorf("Run stopped with %q, want the file, the route and the write owed", msg)
	}
}

// TestTheStartsCheckWaitsForTheJournalAndIsMadeOnce: a replica started
// without the store makes the check once the store answers, and only
// then: while the journal does not answer it goes on serving and tries
// again at the next read, and once the check passed it is not made (nor
// logged) again at every read.
func TestTheStartsCheckWaitsForTheJournalAndIsMadeOnce(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(dir, "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f, ds, logs, err := startWithoutStore(t, dir, st, true)
	if err != nil {
		t.Fatal(err)
	}
	f.resyncEvery = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	// readsAfter waits for n more reads of the store and says whether Run
	// is still going.
	readsAfter := func(n int64) bool {
		t.Helper()
		until := ds.reads.Load() + n
		testkit.Eventually(t, 10*time.Second, "the store read again", func() bool { return ds.reads.Load() >= until })
		select {
		case err := <-done:
			t.Errorf("Run stopped: %v", err)
			done <- err
			return false
		default:
			return true
		}
	}
	ds.down.Store(false) // the overrides answer, the journal does not
	if !readsAfter(5) {
		return
	}
	const checked = "the file's routes are checked against the journal's open writes now that the store answers"
	if n := len(logs.matching(t, checked)); n != 0 {
		t.Fatalf("the check logged as made %d times while the journal did not answer", n)
	}
	ds.journalDown.Store(false)
	testkit.Eventually(t, 10*time.Second, "the check made", func() bool { return len(logs.matching(t, checked)) > 0 })
	if readsAfter(5) {
		if n := len(logs.matching(t, checked)); n != 1 {
			t.Errorf("the check logged as made %d times, want once", n)
		}
	}
}

// startWithoutStore makes the flags of a replica whose file sends
// put-item's writes straight to modern, started from an empty snapshot
// in dir while st does not answer (nor, with journalDown, its journal):
// NewFlags' error is the start's.
func startWithoutStore(t *testing.T, dir string, st *store.Store, journalDown bool) (*Flags, *downStore, *logLines, error) {
	t.Helper()
	cfg, err := configfile.Parse("strangler.yaml", []byte(`
backends:
  legacy: { url: "http://legacy.internal" }
  modern: { url: "http://modern.internal" }
routes:
  - { name: put-item, match: "PUT /items/{id}", mode: modern }
`), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	snap := NewSnapshot(filepath.Join(dir, "flags.json"), "sqlite")
	if err := snap.Save(map[string]domain.Override{}, time.Now()); err != nil {
		t.Fatal(err)
	}
	ds := &downStore{Store: st}
	ds.down.Store(true)
	ds.journalDown.Store(journalDown)
	logs := &logLines{}
	f, err := NewFlags(context.Background(), cfg, ds, snap, &Reports{Counts: st}, applyFunc(func(*config.Config) error { return nil }), slog.New(slog.NewJSONHandler(logs, nil)), time.Now)
	return f, ds, logs, err
}
