package control

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config/configfile"
	"strangler/domain"
	"strangler/dualwrite"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
	"strangler/router"
	"strangler/store"
)

// fenceRoutes has one dual-write route, legacy its primary.
const fenceRoutes = `
routes:
  - name: put-item
    match: "PUT /items/{id}"
    mode: dual-write
`

// recordingBackend keeps the last body written to each path.
type recordingBackend struct {
	*httptest.Server
	mu     sync.Mutex
	bodies map[string]string
}

func newRecordingBackend(t *testing.T) *recordingBackend {
	t.Helper()
	b := &recordingBackend{bodies: map[string]string{}}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.bodies[r.URL.Path] = string(body)
		b.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{}`)
	}))
	t.Cleanup(b.Close)
	return b
}

func (b *recordingBackend) body(path string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.bodies[path]
	return s, ok
}

// servingReplica is a replica's flags driving a real router over the
// state store dsn, serving the public listener: one that does not follow
// other replicas' flips on its own (its Run is not started, as when its
// notification is late or its listening connection broke).
type servingReplica struct {
	*httptest.Server
	flags *Flags
	store *store.Store
	// reg holds its router's metrics; logs, what it logged.
	reg  *prometheus.Registry
	logs *testkit.Logs
}

// With resync false its router cannot read the flags again when the
// journal refuses a write (router.Deps.Resync nil).
func newServingReplica(t *testing.T, dsn, legacyURL, modernURL string, resync bool) *servingReplica {
	t.Helper()
	return serveReplica(t, dsn, legacyURL, modernURL, fenceRoutes, func(r *servingReplica, deps *router.Deps) {
		if resync {
			deps.Resync = func(ctx context.Context) { r.flags.Resync(ctx) }
		}
	})
}

// serveReplica is a servingReplica of routes whose router has the deps
// wire gives it.
func serveReplica(t *testing.T, dsn, legacyURL, modernURL, routes string, wire func(*servingReplica, *router.Deps)) *servingReplica {
	t.Helper()
	cfg, err := configfile.Parse("test.yaml", fmt.Appendf(nil, `
backends:
  legacy: { url: %q }
  modern: { url: %q }
`+routes, legacyURL, modernURL), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &servingReplica{store: st, reg: prometheus.NewRegistry(), logs: &testkit.Logs{}}
	log, reg := r.logs.Logger(slog.LevelInfo), r.reg
	deps := router.Deps{Metrics: router.NewMetrics(reg), Log: log, Journal: dualwrite.NewOutcomes(st, nil, reg, log)}
	wire(r, &deps)
	rtr := router.New(deps)
	r.flags, err = NewFlags(context.Background(), cfg, st, nil, &Reports{Counts: st}, rtr, log, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	r.Server = httptest.NewServer(rtr)
	t.Cleanup(r.Close)
	return r
}

// TestAFlipOnOneReplicaFencesTheDualWritesOfAReplicaThatDidNotFollowIt:
// replica a flips put-item from dual-write (primary legacy) to modern; its
// check of the journal finds nothing owed to modern. Replica b has not
// followed yet when a client writes through it. Before, b journaled the
// write under the flags a replaced: legacy applied it, and it was owed to
// modern, which a sends writes straight to, so its delivery would undo a
// later write there (both acknowledged). Now the journal refuses it as
// decided under stale flags; b reads them again and serves the write as
// they say: straight to modern, journaled nowhere.
func TestAFlipOnOneReplicaFencesTheDualWritesOfAReplicaThatDidNotFollowIt(t *testing.T) {
	dsn := testdb.Postgres(t)
	legacy, modern := newRecordingBackend(t), newRecordingBackend(t)
	a := newPlaneWith(t, planeOptions{dsn: dsn, routes: fenceRoutes})
	b := newServingReplica(t, dsn, legacy.URL, modern.URL, true)

	if resp, body := a.patch(t, "put-item", aliceToken, `{"mode": "modern", "reason": "cut over"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("the flip on replica a: got %d %v, want 200", resp.StatusCode, body)
	}
	if rf, _ := b.flags.Get("put-item"); rf.Mode != domain.ModeDualWrite {
		t.Fatalf("replica b serves put-item in %s before the write, want dual-write: it followed the flip", rf.Mode)
	}
	resp, answer := b.send(t, "/items/1", `{"v":2}`)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the write through replica b: got %d %s, want 200", resp.StatusCode, answer)
	}
	open, err := b.store.OpenPrimaries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := open["put-item"][domain.Legacy]; n != 0 {
		t.Errorf("the journal holds %d write(s) of put-item owed to modern, journaled after the flip that sends its writes straight there", n)
	}
	if got, ok := modern.body("/items/1"); !ok || got != `{"v":2}` {
		t.Errorf("modern holds %q (%t) for /items/1, want the write, sent straight there as the route says now", got, ok)
	}
	if got, ok := legacy.body("/items/1"); ok {
		t.Errorf("legacy got the write (%q): it was served under the flags the flip replaced", got)
	}
	if rf, _ := b.flags.Get("put-item"); rf.Mode != domain.ModeModern {
		t.Errorf("replica b serves put-item in %s after the refused write, want modern: it read the flags again", rf.Mode)
	}
}

// put writes body to path through replica r and returns the status.
func (r *servingReplica) put(t *testing.T, path, body string) int {
	t.Helper()
	resp, _ := r.send(t, path, body)
	return resp.StatusCode
}

// send writes body to path through replica r and returns the answer and
// its body, read whole.
func (r *servingReplica) send(t *testing.T, path, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, r.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(answer)
}

// TestAReplicaCutOffFromTheStoreDuringAFlipJournalsNothingUnderItsOldFlags:
// replica b loses the store; replica a flips put-item to modern meanwhile.
// b serves its last known flags, in which put-item is a dual write, but
// cannot journal: its writes answer 503 and reach no backend. Once the
// store is back, and before b has followed the flip on its own, its next
// write is refused by the journal as decided under stale flags, and
// served straight to modern as the flip says, journaled nowhere.
func TestAReplicaCutOffFromTheStoreDuringAFlipJournalsNothingUnderItsOldFlags(t *testing.T) {
	dsn := testdb.Postgres(t)
	proxy, proxied := testdb.NewProxy(t, dsn)
	legacy, modern := newRecordingBackend(t), newRecordingBackend(t)
	a := newPlaneWith(t, planeOptions{dsn: dsn, routes: fenceRoutes})
	b := newServingReplica(t, proxied, legacy.URL, modern.URL, true)

	proxy.Cut()
	if resp, body := a.patch(t, "put-item", aliceToken, `{"mode": "modern", "reason": "cut over"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("the flip on replica a: got %d %v, want 200", resp.StatusCode, body)
	}
	if code := b.put(t, "/items/1", `{"v":1}`); code != http.StatusServiceUnavailable {
		t.Errorf("a write through replica b without the store: got %d, want 503", code)
	}
	proxy.Restore()
	// The first statements after the cut may meet the pool's dead
	// connections: a write refused so is retried, as its client would.
	var code int
	testkit.Eventually(t, 10*time.Second, "a write through replica b is served once the store is back", func() bool {
		code = b.put(t, "/items/2", `{"v":2}`)
		return code != http.StatusServiceUnavailable
	})
	if code != http.StatusOK {
		t.Errorf("the write once the store is back: got %d, want 200", code)
	}
	if _, ok := legacy.body("/items/1"); ok {
		t.Errorf("legacy got the write refused without the store")
	}
	if _, ok := legacy.body("/items/2"); ok {
		t.Errorf("legacy got the write once the store was back: it was served under the flags the flip replaced")
	}
	if got, ok := modern.body("/items/2"); !ok || got != `{"v":2}` {
		t.Errorf("modern holds %q (%t) for /items/2, want the write", got, ok)
	}
	open, err := a.store.OpenPrimaries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := open["put-item"][domain.Legacy]; n != 0 {
		t.Errorf("the journal holds %d write(s) of put-item owed to modern after the flip", n)
	}
}

// TestAWriteUnderStaleFlagsThatCannotBeReadAgainAnswers503: replica b's
// write, decided under the flags a flip on replica a replaced, is refused
// by the journal, and b cannot read the flags again: the client gets 503
// with Retry-After and a JSON error saying why, and no backend sees the
// write, nor does the journal keep it.
func TestAWriteUnderStaleFlagsThatCannotBeReadAgainAnswers503(t *testing.T) {
	dsn := testdb.Postgres(t)
	legacy, modern := newRecordingBackend(t), newRecordingBackend(t)
	a := newPlaneWith(t, planeOptions{dsn: dsn, routes: fenceRoutes})
	b := newServingReplica(t, dsn, legacy.URL, modern.URL, false)
	if resp, body := a.patch(t, "put-item", aliceToken, `{"mode": "modern", "reason": "cut over"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("the flip on replica a: got %d %v, want 200", resp.StatusCode, body)
	}
	resp, answer := b.send(t, "/items/1", `{"v":2}`)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" ||
		!strings.Contains(answer, `"error":"another replica changed this route moments ago`) {
		t.Errorf("the write through replica b: got %d, Retry-After %q, %s; want 503, Retry-After 1 and a JSON error saying another replica changed the route",
			resp.StatusCode, resp.Header.Get("Retry-After"), answer)
	}
	if _, ok := legacy.body("/items/1"); ok {
		t.Errorf("legacy got the refused write")
	}
	if _, ok := modern.body("/items/1"); ok {
		t.Errorf("modern got the refused write")
	}
	if open, err := a.store.OpenPrimaries(context.Background()); err != nil || len(open) != 0 {
		t.Errorf("the journal's open writes: got %v %v, want none", open, err)
	}
}

// TestAReplicaThatMissedAFlipThereAndBackJournalsUnderTheFlagsAsTheyAre:
// replica a flips put-item to modern and back to dual-write while replica
// b follows neither. b's write is refused by the journal all the same
// (the route's fence moved twice), read again and journaled under the
// flags as they are now: legacy gets it and the journal owes it to
// modern, as a's own writes are now.
func TestAReplicaThatMissedAFlipThereAndBackJournalsUnderTheFlagsAsTheyAre(t *testing.T) {
	dsn := testdb.Postgres(t)
	legacy, modern := newRecordingBackend(t), newRecordingBackend(t)
	a := newPlaneWith(t, planeOptions{dsn: dsn, routes: fenceRoutes})
	b := newServingReplica(t, dsn, legacy.URL, modern.URL, true)
	for _, mode := range []string{"modern", "dual-write"} {
		if resp, body := a.patch(t, "put-item", aliceToken, `{"mode": "`+mode+`", "reason": "back and forth"}`); resp.StatusCode != http.StatusOK {
			t.Fatalf("the flip to %s on replica a: got %d %v, want 200", mode, resp.StatusCode, body)
		}
	}
	read := b.flags.reads.Load()
	if code := b.put(t, "/items/1", `{"v":1}`); code != http.StatusOK {
		t.Fatalf("the write through replica b: got %d, want 200", code)
	}
	if got := b.flags.reads.Load(); got != read+1 {
		t.Errorf("replica b read the flags %d times for the write, want once: its fence was moved twice", got-read)
	}
	if got, ok := legacy.body("/items/1"); !ok || got != `{"v":1}` {
		t.Errorf("legacy holds %q (%t) for /items/1, want the write: the route is a dual write again", got, ok)
	}
	if _, ok := modern.body("/items/1"); ok {
		t.Errorf("modern got the write straight")
	}
	open, err := a.store.OpenPrimaries(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := open["put-item"][domain.Legacy]; n != 1 {
		t.Errorf("the journal holds %d write(s) of put-item owed to modern, want the one b journaled under the flags as they are", n)
	}
}
