package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"strangler/internal/testdb"
	"strangler/patients"
	"strangler/store"
)

// These tests run the dual-write path end to end: real facade processes
// (the binary, or run in this process), a real state store (SQLite, and
// PostgreSQL where the property depends on it), and backends that are real
// HTTP servers storing what they receive.

// e2eAdminToken is the bearer token the test configurations give the admin
// API (named "test" in the audit log).
const e2eAdminToken = "test-admin-token-0123456789"

// backendFault is what a recordingBackend does to a request instead of serving it.
type backendFault int32

const (
	faultNone backendFault = iota
	// fault503 answers 503 Service Unavailable without applying anything.
	fault503
	// faultDrop closes the connection without answering or applying.
	faultDrop
	// faultApplyThenDrop applies the write, then closes the connection
	// without answering: the sender cannot tell it was applied.
	faultApplyThenDrop
)

// recordingBackend is a backend that keeps what it receives, as the
// service behind it would:
//
//   - PUT /items/{id} creates or replaces an item, DELETE /items/{id}
//     deletes it (404 if absent), POST /items creates one under a new id,
//     or under X-Strangler-Primary-Id when it keeps primary ids (409 if
//     taken), GET /items/{id} reads it;
//   - POST /{kind}/{id}/entries (accounts, ledgers) appends its body to
//     that list of entries: not idempotent by nature, so a write applied
//     twice shows.
//
// With keys set it honours Idempotency-Key: a key's first 2xx answer is
// kept and replayed to any later request with that key, which is not
// applied again. It serves on one address for its whole life, also across
// stop and start, like a service restarted in place.
type recordingBackend struct {
	t             *testing.T
	name          string
	addr          string
	keys          bool
	keepPrimaryID bool
	fault         atomic.Int32

	mu  sync.Mutex
	srv *http.Server
	// refuse, if set, makes the backend answer 400 to the writes it
	// matches, as a backend does to a request it will never accept.
	refuse  func(r *http.Request) bool
	items   map[string]string
	entries map[string][]string // "accounts/7" → bodies, in order applied
	nextID  int
	kept    map[string]keptAnswer
	// received counts the writes that reached the handler per
	// Idempotency-Key ("" without one); applied counts those applied.
	received map[string]int
	applied  map[string]int
}

type keptAnswer struct {
	status   int
	location string
	body     []byte
}

func newRecordingBackend(t *testing.T, name string, keys, keepPrimaryID bool) *recordingBackend {
	t.Helper()
	b := &recordingBackend{
		t: t, name: name, keys: keys, keepPrimaryID: keepPrimaryID,
		items: map[string]string{}, entries: map[string][]string{}, nextID: 1,
		kept: map[string]keptAnswer{}, received: map[string]int{}, applied: map[string]int{},
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	b.serve(ln)
	t.Cleanup(b.stop)
	return b
}

func (b *recordingBackend) URL() string { return "http://" + b.addr }

func (b *recordingBackend) serve(ln net.Listener) {
	srv := &http.Server{Handler: b}
	b.mu.Lock()
	b.srv = srv
	b.mu.Unlock()
	go srv.Serve(ln)
}

// stop takes the backend down: connections are refused until start.
func (b *recordingBackend) stop() {
	b.mu.Lock()
	srv := b.srv
	b.srv = nil
	b.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// start brings a stopped backend back on the same address.
func (b *recordingBackend) start() {
	b.t.Helper()
	var ln net.Listener
	var err error
	for range 100 {
		if ln, err = net.Listen("tcp", b.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		b.t.Fatalf("restart %s on %s: %v", b.name, b.addr, err)
	}
	b.serve(ln)
}

// flap makes the backend misbehave in turns until the returned function is
// called: 503s, dropped connections, writes applied but not answered, and
// healthy spells in between.
func (b *recordingBackend) flap() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		faults := []backendFault{fault503, faultNone, faultDrop, faultNone, faultApplyThenDrop, faultNone}
		for i := 0; ; i++ {
			b.fault.Store(int32(faults[i%len(faults)]))
			select {
			case <-done:
				b.fault.Store(int32(faultNone))
				return
			case <-time.After(time.Duration(50+rand.IntN(150)) * time.Millisecond):
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func (b *recordingBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	f := backendFault(b.fault.Load())
	switch f {
	case fault503:
		http.Error(w, "flapping", http.StatusServiceUnavailable)
		return
	case faultDrop:
		dropConnection(w)
		return
	}
	if r.Method == http.MethodGet {
		b.read(w, r)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	b.mu.Lock()
	if b.refuse != nil && b.refuse(r) {
		b.mu.Unlock()
		http.Error(w, "this request is never accepted", http.StatusBadRequest)
		return
	}
	b.received[key]++
	a, ok := b.kept[key]
	if !ok || !b.keys || key == "" {
		a = b.apply(r, body)
		if a.status >= 200 && a.status <= 299 {
			b.applied[key]++
			if b.keys && key != "" {
				b.kept[key] = a
			}
		}
	}
	b.mu.Unlock()
	if f == faultApplyThenDrop {
		dropConnection(w)
		return
	}
	if a.location != "" {
		w.Header().Set("Location", a.location)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	w.Write(a.body)
}

// dropConnection closes the connection without an answer.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// apply performs a write; b.mu is held.
func (b *recordingBackend) apply(r *http.Request, body []byte) keptAnswer {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	answer := func(status int, v any) keptAnswer {
		out, _ := json.Marshal(v)
		return keptAnswer{status: status, body: out}
	}
	switch {
	case r.Method == http.MethodPut && len(parts) == 2 && parts[0] == "items":
		b.items[parts[1]] = string(body)
		return answer(http.StatusOK, map[string]string{"id": parts[1], "value": string(body)})
	case r.Method == http.MethodDelete && len(parts) == 2 && parts[0] == "items":
		if _, ok := b.items[parts[1]]; !ok {
			return answer(http.StatusNotFound, map[string]string{"error": "no such item"})
		}
		delete(b.items, parts[1])
		return keptAnswer{status: http.StatusNoContent}
	case r.Method == http.MethodPost && len(parts) == 1 && parts[0] == "items":
		id := r.Header.Get("X-Strangler-Primary-Id")
		if !b.keepPrimaryID || id == "" {
			id = strconv.Itoa(b.nextID)
			b.nextID++
		}
		if _, taken := b.items[id]; taken {
			return answer(http.StatusConflict, map[string]string{"error": "id taken"})
		}
		b.items[id] = string(body)
		a := answer(http.StatusCreated, map[string]string{"id": id, "value": string(body)})
		a.location = "/items/" + id
		return a
	case r.Method == http.MethodPost && len(parts) == 3 && parts[2] == "entries":
		list := parts[0] + "/" + parts[1]
		b.entries[list] = append(b.entries[list], string(body))
		return answer(http.StatusCreated, map[string]any{"list": list, "entries": len(b.entries[list])})
	}
	return answer(http.StatusNotFound, map[string]string{"error": "no such resource"})
}

func (b *recordingBackend) read(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(parts) == 2 && parts[0] == "items" {
		if v, ok := b.items[parts[1]]; ok {
			io.WriteString(w, v)
			return
		}
	}
	http.Error(w, "no such resource", http.StatusNotFound)
}

// snapshot returns copies of the backend's items and entries.
func (b *recordingBackend) snapshot() (map[string]string, map[string][]string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	entries := make(map[string][]string, len(b.entries))
	for k, v := range b.entries {
		entries[k] = slices.Clone(v)
	}
	items := make(map[string]string, len(b.items))
	for k, v := range b.items {
		items[k] = v
	}
	return items, entries
}

// counts returns copies of the received and applied counts per key.
func (b *recordingBackend) counts() (received, applied map[string]int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	received, applied = map[string]int{}, map[string]int{}
	for k, v := range b.received {
		received[k] = v
	}
	for k, v := range b.applied {
		applied[k] = v
	}
	return received, applied
}

// facadeConfig describes the configuration file of a dual-write facade.
type facadeConfig struct {
	legacy, modern string
	// store is the state store's DSN; empty means a SQLite file in dir.
	store string
	// timeout is both backends' timeout; zero means 1s.
	timeout time.Duration
	// workers is repairs.workers; zero means 8.
	workers int
	// routes is the routes list; empty means dualWriteRoutes.
	routes string
}

// dualWriteRoutes are the routes most tests use: each kind of write its
// own route, as an API's configuration lists them, legacy the primary.
const dualWriteRoutes = `
  - {name: put-item, match: "PUT /items/{id}", mode: dual-write}
  - {name: delete-item, match: "DELETE /items/{id}", mode: dual-write}
  - {name: create-item, match: "POST /items", mode: dual-write, id_field: id}
  - {name: append-entry, match: "POST /accounts/{id}/entries", mode: dual-write}
  - {name: get-item, match: "GET /items/{id}", mode: legacy}
`

// writeFacadeConfig writes c as a configuration file in dir and returns
// its path. Repairs retry quickly so that a test's backlog drains in
// seconds, and never give up on their own.
func writeFacadeConfig(t *testing.T, dir string, c facadeConfig) string {
	t.Helper()
	if c.store == "" {
		c.store = "sqlite:" + filepath.Join(dir, "strangler.db")
	}
	if c.timeout == 0 {
		c.timeout = time.Second
	}
	if c.workers == 0 {
		c.workers = 8
	}
	if c.routes == "" {
		c.routes = dualWriteRoutes
	}
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
  tokens: [{name: test, token: %q}]
backends:
  legacy: { url: %q, timeout: %s }
  modern: { url: %q, timeout: %s }
debug_headers: true
shutdown: { delay: 0s, grace: 5s }
store: %q
repairs: { backoff: 20ms, max_backoff: 300ms, max_attempts: 100000, workers: %d }
routes:
%s`, e2eAdminToken, c.legacy, c.timeout, c.modern, c.timeout, c.store, c.workers, c.routes)
	path := filepath.Join(dir, fmt.Sprintf("strangler-%d.yaml", time.Now().UnixNano()))
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// e2eClient sends the tests' writes: enough idle connections for their
// concurrency, and a bound on each exchange.
var e2eClient = &http.Client{
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	Timeout:   20 * time.Second,
}

// sendRequest sends one request and returns the status (0 on an error) and body.
func sendRequest(method, url, body string, header map[string]string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e2eClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// adminDo calls the admin API with the test token.
func adminDo(t *testing.T, admin, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://"+admin+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e2eAdminToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e2eClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// openStateStore opens the facade's store from the test, to watch its queue
// as an operator's query would.
func openStateStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := store.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// queueDepth reads the queue's open states.
func queueDepth(t *testing.T, st *store.Store) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := st.RepairDepth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// waitDrained waits until no journaled write is open (pending, sent,
// unknown or dead), and fails the test after timeout.
func waitDrained(t *testing.T, st *store.Store, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		d := queueDepth(t, st)
		if d["pending"]+d["sent"]+d["unknown"]+d["dead"] == 0 {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("the queue did not drain in %v: %v", timeout, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logOpenWrites logs the newest sent and pending writes and, for the
// resource of the newest pending one, every write not yet done: what a
// test needs to see when a queue does not drain.
func logOpenWrites(t *testing.T, st *store.Store) {
	t.Helper()
	ctx := context.Background()
	line := func(r store.RepairSummary) string {
		return fmt.Sprintf("%s %s %s seq=%d attempts=%d last_error=%q next=%v lease=%s until %v",
			r.State, r.ID, r.Resource, r.Seq, r.Attempts, r.LastError, r.NextAttemptAt, r.LeaseOwner, r.LeaseUntil)
	}
	for _, state := range []store.State{store.StateSent, store.StatePending} {
		l, _ := st.ListRepairs(ctx, store.RepairFilter{State: state, Limit: 10})
		for _, r := range l {
			t.Log(line(r))
		}
		if state == store.StatePending && len(l) > 0 {
			all, _ := st.ListRepairs(ctx, store.RepairFilter{Resource: l[0].Resource, Limit: 1000})
			for _, r := range all {
				if r.State != store.StateDone {
					t.Log("  " + line(r))
				}
			}
		}
	}
}

// pollUntil polls cond every 50ms until it holds, failing after timeout.
func pollUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not after %v", what, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// runParallel runs n calls of f over workers goroutines and returns when all
// are done.
func runParallel(n, workers int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}

// sameRecords fails the test unless the two backends hold the same items
// and, per list, the same entries (in any order).
func sameRecords(t *testing.T, primary, secondary *recordingBackend) {
	t.Helper()
	pi, pe := primary.snapshot()
	si, se := secondary.snapshot()
	for id, v := range pi {
		if got, ok := si[id]; !ok {
			t.Errorf("item %s: missing on the secondary, want %q as on the primary", id, v)
		} else if got != v {
			t.Errorf("item %s: got %q on the secondary, want %q as on the primary", id, got, v)
		}
	}
	for id, v := range si {
		if _, ok := pi[id]; !ok {
			t.Errorf("item %s: got %q on the secondary, want it absent as on the primary", id, v)
		}
	}
	for _, list := range unionKeys(pe, se) {
		p, s := slices.Sorted(slices.Values(pe[list])), slices.Sorted(slices.Values(se[list]))
		if !slices.Equal(p, s) {
			t.Errorf("%s: the secondary holds %d entries, the primary %d; they differ", list, len(s), len(p))
		}
	}
}

func unionKeys[V any](a, b map[string]V) []string {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return slices.Sorted(func(yield func(string) bool) {
		for k := range keys {
			if !yield(k) {
				return
			}
		}
	})
}

// onBothStores runs f as a subtest on SQLite and on PostgreSQL.
func onBothStores(t *testing.T, f func(t *testing.T, dsn func(dir string) string)) {
	t.Run("on SQLite", func(t *testing.T) {
		f(t, func(dir string) string { return "sqlite:" + filepath.Join(dir, "strangler.db") })
	})
	t.Run("on PostgreSQL", func(t *testing.T) {
		url := testdb.Postgres(t)
		f(t, func(string) string { return url })
	})
}

// TestDualWriteSecondaryDownFor1000Writes: every write succeeds for the
// client while the secondary is down, all of them wait in the queue, and
// once it is back the queue drains and both sides hold the same records.
func TestDualWriteSecondaryDownFor1000Writes(t *testing.T) {
	onBothStores(t, func(t *testing.T, dsn func(string) string) {
		const writes = 1000
		legacy := newRecordingBackend(t, "legacy", false, false)
		modern := newRecordingBackend(t, "modern", true, true)
		modern.stop()
		dir := t.TempDir()
		p := startProcess(t, "serve", "--config", writeFacadeConfig(t, dir, facadeConfig{
			legacy: legacy.URL(), modern: modern.URL(), store: dsn(dir),
		}))
		st := openStateStore(t, dsn(dir))

		start := time.Now()
		var failed atomic.Int64
		runParallel(writes, 8, func(i int) {
			// 250 items written four times each, and entries appended to
			// 10 accounts: ordered per resource, unordered across them.
			var code int
			var err error
			if i%5 == 4 {
				code, _, err = sendRequest("POST", fmt.Sprintf("http://%s/accounts/%d/entries", p.public, i%10), fmt.Sprintf(`{"w":%d}`, i), nil)
			} else {
				code, _, err = sendRequest("PUT", fmt.Sprintf("http://%s/items/%d", p.public, i%250), fmt.Sprintf(`{"v":%d}`, i), nil)
			}
			if err != nil || code < 200 || code > 299 {
				if failed.Add(1) <= 3 {
					t.Errorf("write %d: got %d %v, want 2xx from the primary", i, code, err)
				}
			}
		})
		t.Logf("%d writes with the secondary down in %v", writes, time.Since(start).Round(time.Millisecond))
		if n := failed.Load(); n > 0 {
			t.Fatalf("%d of %d writes failed for the client, want none", n, writes)
		}
		pollUntil(t, "strangler_repair_queue_depth{state=\"pending\"} = 1000", 10*time.Second, func() bool {
			return metricValue(t, p.admin, `strangler_repair_queue_depth{state="pending"}`) == strconv.Itoa(writes)
		})
		if d := queueDepth(t, st); d["pending"] != writes {
			t.Fatalf("pending writes in the store: got %d, want %d", d["pending"], writes)
		}

		modern.start()
		took := waitDrained(t, st, 60*time.Second)
		t.Logf("queue of %d drained in %v once the secondary was back", writes, took.Round(time.Millisecond))
		sameRecords(t, legacy, modern)
		_, applied := modern.counts()
		for key, n := range applied {
			if n != 1 {
				t.Errorf("Idempotency-Key %q applied %d times by the secondary, want 1", key, n)
			}
		}
	})
}

// TestDualWriteBacklogOfOneResource: writes to one resource wait for
// each other, so a backlog of them (built while the secondary was down,
// or behind a delivery a crashed replica had leased) goes one at a time;
// it must still go as fast as the secondary answers, not one per poll.
func TestDualWriteBacklogOfOneResource(t *testing.T) {
	const writes = 300
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	modern.stop()
	dir := t.TempDir()
	p := startProcess(t, "serve", "--config", writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL()}))
	st := openStateStore(t, "sqlite:"+filepath.Join(dir, "strangler.db"))
	runParallel(writes, 4, func(i int) {
		if code, _, err := sendRequest("POST", "http://"+p.public+"/accounts/1/entries", fmt.Sprintf(`{"w":%d}`, i), nil); err != nil || code != http.StatusCreated {
			t.Errorf("write %d: got %d %v, want 201", i, code, err)
		}
	})
	modern.start()
	took := waitDrained(t, st, 30*time.Second)
	t.Logf("%d writes to one resource drained in %v once the secondary was back", writes, took.Round(time.Millisecond))
	sameRecords(t, legacy, modern)
}

// TestDualWriteSameIdempotencyKeyThreeTimes: a client sending one write
// three times at once with the same Idempotency-Key (a retry racing the
// original) leaves one record on each backend.
//
// Whose key is whose: the client's Idempotency-Key passes through to the
// primary untouched, and the primary (here the reference API, which
// honours keys, so the route says primary_idempotent) applies the write
// once and replays its answer to the other two. The facade journals each
// of the three and sends each to the secondary with a key stable across
// the repair worker's retries: its own, the intent id, on a route whose
// primary does not honour keys (there each request is a write of its own
// on the primary too); the client's key here, so that the secondary too
// applies the three once.
//
// Without primary_idempotent the facade cannot know the primary applied
// the three once: the secondary gets three keys and the primary's one id
// (X-Strangler-Primary-Id) three times, and a secondary keeping primary
// ids answers the second and third 409, which dead-letters them.
func TestDualWriteSameIdempotencyKeyThreeTimes(t *testing.T) {
	onBothStores(t, func(t *testing.T, dsn func(string) string) {
		legacyStore, modernStore := patients.NewMemoryStore(0, 1000), patients.NewMemoryStore(0, 1)
		legacy := httptestServer(t, patients.NewAPI(patients.Backend{
			Patients: legacyStore, Photos: legacyStore, Idempotency: patients.NewMemoryIdempotency(),
		}, slog.New(slog.DiscardHandler)).ServeHTTP)
		modern := httptestServer(t, patients.NewAPI(patients.Backend{
			Patients: modernStore, Photos: modernStore, Idempotency: patients.NewMemoryIdempotency(), KeepPrimaryID: true,
		}, slog.New(slog.DiscardHandler)).ServeHTTP)
		dir := t.TempDir()
		p := startProcess(t, "serve", "--config", writeFacadeConfig(t, dir, facadeConfig{
			legacy: legacy.URL, modern: modern.URL, store: dsn(dir), routes: `
  - {name: create-patient, match: "POST /patients", mode: dual-write, id_field: id, primary_idempotent: true}
  - {name: update-patient, match: "PUT /patients/{id}", mode: dual-write}
`,
		}))
		st := openStateStore(t, dsn(dir))

		const body = `{"first_name":"Ada","last_name":"Lovelace","birth_date":"1815-12-10"}`
		var wg sync.WaitGroup
		answers := make([]string, 3)
		for i := range answers {
			wg.Go(func() {
				code, got, err := sendRequest("POST", "http://"+p.public+"/patients", body, map[string]string{"Idempotency-Key": "client-key-1"})
				if err != nil || code != http.StatusCreated {
					t.Errorf("request %d: got %d %v, want 201", i, code, err)
				}
				answers[i] = got
			})
		}
		wg.Wait()
		if answers[0] != answers[1] || answers[1] != answers[2] {
			t.Errorf("the three answers differ, want the primary's one answer replayed:\n%s", strings.Join(answers, "\n"))
		}
		// A later write shows whether the route's queue still flows.
		if code, _, err := sendRequest("POST", "http://"+p.public+"/patients", `{"first_name":"Grace","last_name":"Hopper","birth_date":"1906-12-09"}`, nil); err != nil || code != http.StatusCreated {
			t.Fatalf("a later create: got %d %v, want 201", code, err)
		}
		pollUntil(t, "the queue settles", 20*time.Second, func() bool {
			d := queueDepth(t, st)
			return d["pending"]+d["sent"] == 0
		})

		ctx := context.Background()
		onLegacy, _ := legacyStore.List(ctx, 0, 100)
		onModern, _ := modernStore.List(ctx, 0, 100)
		if len(onLegacy) != 2 || len(onModern) != 2 {
			t.Errorf("got %d patients on the primary and %d on the secondary, want 2 on each (Ada once, Grace once)", len(onLegacy), len(onModern))
		}
		for i := range min(len(onLegacy), len(onModern)) {
			if onLegacy[i].ID != onModern[i].ID || onLegacy[i].LastName != onModern[i].LastName {
				t.Errorf("patient %d: got %+v on the secondary, want %+v as on the primary", i, onModern[i], onLegacy[i])
			}
		}
		if d := queueDepth(t, st); d["dead"] != 0 {
			code, list := adminDo(t, p.admin, "GET", "/admin/repairs?state=dead", nil)
			t.Errorf("dead-lettered writes: got %d, want 0: the client's retries reached the secondary as distinct writes; %d %s", d["dead"], code, list)
		}
	})
}

// TestDualWriteOrderPerResource: writes to one resource reach the
// secondary in the order the primary applied them, whatever the secondary
// does meanwhile.
func TestDualWriteOrderPerResource(t *testing.T) {
	t.Run("PUT v1 then v2 while the secondary flaps ends at v2", func(t *testing.T) {
		legacy := newRecordingBackend(t, "legacy", false, false)
		modern := newRecordingBackend(t, "modern", true, true)
		dir := t.TempDir()
		p := startProcess(t, "serve", "--config", writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL()}))
		st := openStateStore(t, "sqlite:"+filepath.Join(dir, "strangler.db"))

		stopFlapping := modern.flap()
		const items, versions = 40, 5
		runParallel(items, 8, func(i int) {
			for v := 1; v <= versions; v++ {
				code, _, err := sendRequest("PUT", fmt.Sprintf("http://%s/items/o%d", p.public, i), fmt.Sprintf(`{"v":%d}`, v), nil)
				if err != nil || code != http.StatusOK {
					t.Errorf("PUT item o%d v%d: got %d %v, want 200", i, v, code, err)
				}
			}
		})
		time.Sleep(500 * time.Millisecond)
		stopFlapping()
		waitDrained(t, st, 30*time.Second)
		items_, _ := modern.snapshot()
		for i := range items {
			id := fmt.Sprintf("o%d", i)
			if got, want := items_[id], fmt.Sprintf(`{"v":%d}`, versions); got != want {
				t.Errorf("item %s on the secondary: got %q, want %q", id, got, want)
			}
		}
		sameRecords(t, legacy, modern)
	})

	// A create still waiting for the secondary, then the DELETE of what it
	// created: the secondary must end without it, whichever order the two
	// were answered in by it.
	deleteAfterCreate := func(t *testing.T, create func(p *process, i int) (path string)) {
		legacy := newRecordingBackend(t, "legacy", false, false)
		modern := newRecordingBackend(t, "modern", true, true)
		dir := t.TempDir()
		p := startProcess(t, "serve", "--config", writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL()}))
		st := openStateStore(t, "sqlite:"+filepath.Join(dir, "strangler.db"))

		// The creates reach the primary while the secondary is down: they
		// wait in the queue, backing off.
		modern.stop()
		const n = 10
		var paths []string
		for i := range n {
			paths = append(paths, create(p, i))
		}
		time.Sleep(time.Second)
		// The secondary is back; the client deletes what it created.
		modern.start()
		for _, path := range paths {
			if code, _, err := sendRequest("DELETE", "http://"+p.public+path, "", nil); err != nil || code != http.StatusNoContent {
				t.Errorf("DELETE %s: got %d %v, want 204", path, code, err)
			}
		}
		pollUntil(t, "the queue settles", 20*time.Second, func() bool {
			d := queueDepth(t, st)
			return d["pending"]+d["sent"] == 0
		})
		onModern, _ := modern.snapshot()
		for id, v := range onModern {
			t.Errorf("item %s is on the secondary (%s) after its DELETE, want it absent as on the primary", id, v)
		}
		if d := queueDepth(t, st); d["dead"] != 0 {
			t.Errorf("dead-lettered writes: got %d, want 0", d["dead"])
		}
	}
	t.Run("a DELETE after a failed create does not resurrect the resource", func(t *testing.T) {
		deleteAfterCreate(t, func(p *process, i int) string {
			path := fmt.Sprintf("/items/z%d", i)
			if code, _, err := sendRequest("PUT", "http://"+p.public+path, `{"v":"created by PUT"}`, nil); err != nil || code != http.StatusOK {
				t.Fatalf("PUT %s: got %d %v, want 200", path, code, err)
			}
			return path
		})
	})
	t.Run("a DELETE after a failed POST create does not resurrect the resource", func(t *testing.T) {
		// A POST's request path is its collection (/items), the DELETE's
		// the item (/items/7): the create moves to the resource its answer
		// names, so the two are ordered.
		deleteAfterCreate(t, func(p *process, i int) string {
			code, body, err := sendRequest("POST", "http://"+p.public+"/items", `{"v":"created by POST"}`, nil)
			if err != nil || code != http.StatusCreated {
				t.Fatalf("POST /items: got %d %v, want 201", code, err)
			}
			var c struct{ ID string }
			json.Unmarshal([]byte(body), &c)
			return "/items/" + c.ID
		})
	})
}

// TestDualWritePermanentRefusal: a write the secondary refuses with 400
// is dead-lettered for an operator, and writes to other resources keep
// reaching the secondary.
func TestDualWritePermanentRefusal(t *testing.T) {
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	modern.mu.Lock()
	modern.refuse = func(r *http.Request) bool { return r.URL.Path == "/items/poison" }
	modern.mu.Unlock()
	dir := t.TempDir()
	p := startProcess(t, "serve", "--config", writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL()}))
	st := openStateStore(t, "sqlite:"+filepath.Join(dir, "strangler.db"))

	put := func(id, v string) {
		t.Helper()
		if code, _, err := sendRequest("PUT", "http://"+p.public+"/items/"+id, v, nil); err != nil || code != http.StatusOK {
			t.Fatalf("PUT %s: got %d %v, want 200 from the primary", id, code, err)
		}
	}
	put("poison", `{"v":1}`)
	for i := range 20 {
		put(fmt.Sprintf("a%d", i), `{"v":1}`)
	}
	pollUntil(t, "the refused write is dead", 10*time.Second, func() bool { return queueDepth(t, st)["dead"] == 1 })
	// Writes after the dead letter flow too.
	for i := range 20 {
		put(fmt.Sprintf("b%d", i), `{"v":2}`)
	}
	pollUntil(t, "the other writes are applied", 10*time.Second, func() bool {
		d := queueDepth(t, st)
		return d["pending"]+d["sent"] == 0
	})

	onModern, _ := modern.snapshot()
	for _, prefix := range []string{"a", "b"} {
		for i := range 20 {
			if _, ok := onModern[fmt.Sprintf("%s%d", prefix, i)]; !ok {
				t.Errorf("item %s%d: missing on the secondary, want it applied despite the dead letter", prefix, i)
			}
		}
	}
	if _, ok := onModern["poison"]; ok {
		t.Error("the refused item is on the secondary")
	}
	code, body := adminDo(t, p.admin, "GET", "/admin/repairs?state=dead", nil)
	var list struct {
		Repairs []struct {
			Resource  string `json:"resource"`
			LastError string `json:"last_error"`
			Attempts  int    `json:"attempts"`
		} `json:"repairs"`
	}
	if err := json.Unmarshal(body, &list); err != nil || code != 200 {
		t.Fatalf("GET /admin/repairs?state=dead: %d %s", code, body)
	}
	if len(list.Repairs) != 1 || !strings.Contains(list.Repairs[0].LastError, "400") || list.Repairs[0].Attempts != 1 {
		t.Errorf("dead letters: got %+v, want one, refused with 400 on its first attempt", list.Repairs)
	}
	pollUntil(t, `strangler_repair_queue_depth{state="dead"} = 1`, 10*time.Second, func() bool {
		return metricValue(t, p.admin, `strangler_repair_queue_depth{state="dead"}`) == "1"
	})
}

// TestDualWriteStoreUnavailable: with the state store unreachable a write
// on a dual-write route is refused with 503 before the primary sees it (it
// could not be journaled, so it could be lost), while reads are served.
func TestDualWriteStoreUnavailable(t *testing.T) {
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	proxy, dsn := testdb.NewProxy(t, testdb.Postgres(t))
	dir := t.TempDir()
	p := startProcess(t, "serve", "--config", writeFacadeConfig(t, dir, facadeConfig{
		legacy: legacy.URL(), modern: modern.URL(), store: dsn,
	}))
	if code, _, err := sendRequest("PUT", "http://"+p.public+"/items/1", `{"v":1}`, nil); err != nil || code != http.StatusOK {
		t.Fatalf("PUT with the store up: got %d %v, want 200", code, err)
	}

	proxy.Cut()
	code, body, err := sendRequest("PUT", "http://"+p.public+"/items/2", `{"v":2}`, nil)
	if err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("PUT with the store down: got %d %q %v, want 503", code, body, err)
	}
	if onLegacy, _ := legacy.snapshot(); onLegacy["2"] != "" {
		t.Error("the primary applied a write that could not be journaled")
	}
	code, body, err = sendRequest("GET", "http://"+p.public+"/items/1", "", nil)
	if err != nil || code != http.StatusOK || body != `{"v":1}` {
		t.Errorf("GET with the store down: got %d %q %v, want 200 {\"v\":1}", code, body, err)
	}

	proxy.Restore()
	pollUntil(t, "writes are accepted again", 10*time.Second, func() bool {
		code, _, _ := sendRequest("PUT", "http://"+p.public+"/items/3", `{"v":3}`, nil)
		return code == http.StatusOK
	})
}

// TestDualWriteFacadeKilled: the facade is killed (SIGKILL) at random
// moments during 2,000 writes and restarted on the same store each time,
// while the secondary flaps. Once the queue has settled and an operator
// has settled the writes whose primary outcome a kill lost, no write the
// client saw succeed is missing on the secondary, none is applied twice on
// either side, and both sides hold the same entries; on SQLite and on
// PostgreSQL.
//
// Two routes append entries: accounts, whose primary does not honour
// Idempotency-Key (a lost outcome becomes unknown, for the operator), and
// ledgers, whose primary does (primary_idempotent: recovery resends it
// with the key the primary first saw).
func TestDualWriteFacadeKilled(t *testing.T) {
	// Both mostly wait for leases to pass: they wait together.
	t.Run("on SQLite", func(t *testing.T) {
		t.Parallel()
		testFacadeKilled(t, "sqlite:"+filepath.Join(t.TempDir(), "strangler.db"))
	})
	t.Run("on PostgreSQL", func(t *testing.T) {
		t.Parallel()
		testFacadeKilled(t, testdb.Postgres(t))
	})
}

func testFacadeKilled(t *testing.T, dsn string) {
	const writes, kills, lists = 2000, 6, 20
	legacy := newRecordingBackend(t, "legacy", true, false)
	modern := newRecordingBackend(t, "modern", true, true)
	dir := t.TempDir()
	config := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: dsn, routes: `
  - {name: append-entry, match: "POST /accounts/{id}/entries", mode: dual-write}
  - {name: append-ledger, match: "POST /ledgers/{id}/entries", mode: dual-write, primary_idempotent: true}
`})
	p := startProcess(t, "serve", "--config", config)
	st := openStateStore(t, dsn)
	t.Cleanup(func() {
		if t.Failed() {
			logOpenWrites(t, st)
			t.Logf("the last facade's log:\n%s", p.logs)
		}
	})
	var public atomic.Pointer[string]
	public.Store(&p.public)

	// The client: a write that could not connect never left, so it is
	// sent again; any other error leaves its outcome unknown to the client.
	var (
		mu                  sync.Mutex
		succeeded           = map[string]bool{}
		clientUnknown, sent atomic.Int64
	)
	stopFlapping := modern.flap()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runParallel(writes, 8, func(i int) {
			path := fmt.Sprintf("/accounts/%d/entries", i%lists)
			if i%2 == 1 {
				path = fmt.Sprintf("/ledgers/%d/entries", i%lists)
			}
			body := fmt.Sprintf(`{"w":%d}`, i)
			for {
				code, _, err := sendRequest("POST", "http://"+*public.Load()+path, body, nil)
				var op *net.OpError
				if errors.As(err, &op) && op.Op == "dial" {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				sent.Add(1)
				switch {
				case err != nil:
					clientUnknown.Add(1)
				case code == http.StatusCreated:
					mu.Lock()
					succeeded[body] = true
					mu.Unlock()
				default:
					t.Errorf("write %d: got %d, want 201 (or a broken connection when killed)", i, code)
				}
				return
			}
		})
	}()

	// The killer: at random points of the run, SIGKILL, then a new
	// process on the same store.
	at := make([]int, kills)
	for k := range at {
		at[k] = 100 + rand.IntN(writes-300)
	}
	slices.Sort(at)
	var lastKill time.Time
	for k, n := range at {
		for sent.Load() < int64(n) {
			time.Sleep(5 * time.Millisecond)
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		p.cmd.Wait()
		p = startProcess(t, "serve", "--config", config)
		public.Store(&p.public)
		lastKill = time.Now()
		t.Logf("kill %d after %d writes; restarted", k+1, n)
	}
	<-done
	stopFlapping()
	t.Logf("%d writes: %d succeeded for the client, %d unknown to it", writes, len(succeeded), clientUnknown.Load())

	// Writes a killed process had sent to the primary become unknown or
	// are resent once their lease passes, and deliveries it had in flight
	// are taken over once theirs does.
	took := pollUntil(t, "no write sent or pending", 90*time.Second, func() bool {
		d := queueDepth(t, st)
		return d["sent"]+d["pending"] == 0
	})
	t.Logf("the queue settled %v after the run, %v after the last kill", took.Round(100*time.Millisecond), time.Since(lastKill).Round(100*time.Millisecond))

	// The operator settles each unknown write: retried if the primary has
	// it, discarded if not.
	code, body := adminDo(t, p.admin, "GET", "/admin/repairs?state=unknown&limit=1000", nil)
	var unknown struct {
		Repairs []struct {
			ID string `json:"id"`
		} `json:"repairs"`
	}
	if err := json.Unmarshal(body, &unknown); err != nil || code != http.StatusOK {
		t.Fatalf("GET /admin/repairs?state=unknown: %d %s", code, body)
	}
	_, primaryEntries := legacy.snapshot()
	onPrimary := map[string]bool{}
	for _, list := range primaryEntries {
		for _, e := range list {
			onPrimary[e] = true
		}
	}
	var retried, discarded int
	for _, r := range unknown.Repairs {
		code, body := adminDo(t, p.admin, "GET", "/admin/repairs/"+r.ID+"?body=1", nil)
		var rep struct {
			Body string `json:"body"`
		}
		if err := json.Unmarshal(body, &rep); err != nil || code != http.StatusOK {
			t.Fatalf("GET /admin/repairs/%s?body=1: %d %s", r.ID, code, body)
		}
		reason := map[string]string{"reason": "checked the primary"}
		if onPrimary[rep.Body] {
			code, body = adminDo(t, p.admin, "POST", "/admin/repairs/"+r.ID+"/retry", reason)
			retried++
		} else {
			code, body = adminDo(t, p.admin, "DELETE", "/admin/repairs/"+r.ID, reason)
			discarded++
		}
		if code != http.StatusOK {
			t.Fatalf("settling %s: %d %s", r.ID, code, body)
		}
	}
	t.Logf("the operator settled %d unknown writes: %d retried (on the primary), %d discarded (not on it)", len(unknown.Repairs), retried, discarded)
	waitDrained(t, st, 30*time.Second)

	_, secondaryEntries := modern.snapshot()
	onSecondary := map[string]int{}
	for _, list := range secondaryEntries {
		for _, e := range list {
			onSecondary[e]++
		}
	}
	for w := range succeeded {
		if onSecondary[w] == 0 {
			t.Errorf("write %s: the client saw it succeed, but it is missing on the secondary", w)
		}
	}
	for w, n := range onSecondary {
		if n > 1 {
			t.Errorf("write %s: applied %d times on the secondary, want once", w, n)
		}
	}
	seen := map[string]bool{}
	for _, list := range primaryEntries {
		for _, e := range list {
			if seen[e] {
				t.Errorf("write %s: applied twice on the primary", e)
			}
			seen[e] = true
		}
	}
	sameRecords(t, legacy, modern)
	received, applied := modern.counts()
	var again int
	for key, n := range received {
		again += n - applied[key]
	}
	t.Logf("the secondary got %d deliveries again under a key it had applied, and applied none of them twice", again)
}

// TestDualWriteThreeReplicasDrainOneQueue: three facade processes sharing
// one PostgreSQL store drain a queue of 10,000 writes, built while the
// secondary was down, without applying any of them twice. The secondary
// here does not honour Idempotency-Key, so every request it gets is an
// application: a write claimed by two replicas would show as a key
// applied twice.
func TestDualWriteThreeReplicasDrainOneQueue(t *testing.T) {
	const writes = 10000
	// Commits need not wait for the WAL to reach the disk here: what is
	// under test is that replicas never claim one write together, not
	// PostgreSQL's durability, and 10,000 writes cost 40,000 commits.
	dsn := testdb.Postgres(t) + "&synchronous_commit=off"
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", false, false)
	dir := t.TempDir()
	// The facade that builds the queue tries to deliver as little as it
	// can (one worker): each try fails and costs commits. A claim of due
	// writes costs the same whatever its size (over 0.1 s with 10,000 due
	// on this machine: see the report on issue 3), so the replicas that
	// drain it claim up to 100 at a time. A delivery that times out is
	// sent again, which this secondary would apply twice: the generous
	// timeout keeps a busy machine from passing for a double claim.
	builderConfig := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: dsn, workers: 1, timeout: 10 * time.Second})
	config := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: dsn, workers: 100, timeout: 10 * time.Second})
	st := openStateStore(t, dsn)

	// The queue: 10,000 items written while the secondary is down.
	modern.stop()
	builder := startProcess(t, "serve", "--config", builderConfig)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the builder's log:\n%s", builder.logs)
		}
	})
	start := time.Now()
	var failed atomic.Int64
	runParallel(writes, 16, func(i int) {
		code, _, err := sendRequest("PUT", fmt.Sprintf("http://%s/items/%d", builder.public, i), fmt.Sprintf(`{"v":%d}`, i), nil)
		if err != nil || code != http.StatusOK {
			if failed.Add(1) <= 3 {
				t.Errorf("write %d: got %d %v, want 200", i, code, err)
			}
		}
	})
	if err := builder.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	builder.cmd.Wait()
	if d := queueDepth(t, st); d["pending"] != writes || failed.Load() > 0 {
		t.Fatalf("after %d writes (%d failed): %v, want %d pending", writes, failed.Load(), d, writes)
	}
	t.Logf("%d writes queued in %v", writes, time.Since(start).Round(time.Millisecond))

	// The secondary is back; three replicas drain the queue together.
	modern.start()
	start = time.Now()
	var replicas [3]*process
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Go(func() { replicas[i] = startProcess(t, "serve", "--config", config) })
	}
	wg.Wait()
	took := waitDrained(t, st, 90*time.Second)
	t.Logf("three replicas drained %d writes in %v (%v after the last one was ready)", writes, time.Since(start).Round(time.Millisecond), took.Round(time.Millisecond))

	var shares []string
	for i, p := range replicas {
		shares = append(shares, fmt.Sprintf("replica %d: %s", i+1, metricValue(t, p.admin, `strangler_dualwrite_total{result="applied",route="put-item"}`)))
	}
	t.Logf("applied per replica: %s", strings.Join(shares, ", "))

	_, applied := modern.counts()
	if len(applied) != writes {
		t.Errorf("the secondary applied %d distinct Idempotency-Keys, want %d", len(applied), writes)
	}
	var twice int
	for key, n := range applied {
		if n != 1 {
			if twice++; twice <= 10 {
				t.Errorf("Idempotency-Key %s: applied %d times by the secondary, want once", key, n)
			}
		}
	}
	if twice > 0 {
		t.Errorf("%d of %d writes applied more than once by the secondary, want none", twice, len(applied))
	}
	sameRecords(t, legacy, modern)
}
