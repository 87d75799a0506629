package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
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
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testdb"
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
	// faultApplyThenHang applies the write, then never answers: the sender
	// times out not knowing it was applied.
	faultApplyThenHang
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
	refuse func(r *http.Request) bool
	// hold, if set, sees each write before it is applied, outside the
	// lock: a test keeps the backend's answer waiting there.
	hold    func(r *http.Request)
	items   map[string]string
	entries map[string][]string // "accounts/7" → bodies, in order applied
	nextID  int
	kept    map[string]keptAnswer
	// received counts the writes that reached the handler per
	// Idempotency-Key ("" without one); applied counts those applied.
	received map[string]int
	applied  map[string]int
	// writeHeaders are the headers of the writes that reached the handler,
	// in order.
	writeHeaders []http.Header
}

type keptAnswer struct {
	status   int
	location string
	body     []byte
}

// putV2Last sends PUT /items/1 v2 once v1 is owed to modern (held by
// backendsHoldingDeliveries), releases the deliveries, and checks that
// modern ends with v2, the last write the client saw succeed.
func putV2Last(t *testing.T, r *running, st *store.Store, modern *recordingBackend, released func()) {
	t.Helper()
	code, body, err := sendRequest("PUT", "http://"+r.public+"/items/1", `{"v":2}`, nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("PUT v2: got %d %s %v, want 200", code, body, err)
	}
	released()
	waitDrained(t, st, 60*time.Second)
	if items, _ := modern.snapshot(); items["1"] != `{"v":2}` {
		t.Errorf("modern holds item 1 as %s, want the last write the client saw succeed, v2", items["1"])
	}
}

// backendsHoldingDeliveries is a recording legacy and modern, modern
// holding every delivery from the journal (a request carrying
// X-Strangler-Primary-Status) until released is called, as it is when
// the test ends: a write then stays owed to modern for as long as a test
// needs.
func backendsHoldingDeliveries(t *testing.T) (legacy, modern *recordingBackend, released func()) {
	legacy = newRecordingBackend(t, "legacy", false, false)
	modern = newRecordingBackend(t, "modern", false, false)
	release := make(chan struct{})
	released = sync.OnceFunc(func() { close(release) })
	t.Cleanup(released)
	modern.hold = func(r *http.Request) {
		if r.Header.Get("X-Strangler-Primary-Status") != "" {
			<-release
		}
	}
	return legacy, modern, released
}

func newRecordingBackend(t *testing.T, name string, keys, keepPrimaryID bool) *recordingBackend {
	t.Helper()
	b := &recordingBackend{
		t: t, name: name, keys: keys, keepPrimaryID: keepPrimaryID,
		items: map[string]string{}, entries: map[string][]string{}, nextID: 1,
		kept: map[string]keptAnswer{}, received: map[string]int{}, applied: map[string]int{},
	}
	ln := listenRestartable(t)
	b.addr = ln.Addr().String()
	b.serve(ln)
	t.Cleanup(b.stop)
	return b
}

// listenRestartable listens on a loopback port below the kernel's
// ephemeral range. A backend that a test stops and starts again needs its
// port back, and a port from that range may meanwhile become the local end
// of any outgoing connection (the facade's to its store, a client's) or
// another test's listener: the restart then fails, or the facade reaches
// the wrong server. Ports below the range are handed out by nobody.
func listenRestartable(t *testing.T) net.Listener {
	t.Helper()
	first := ephemeralFirst()
	var err error
	for range 200 {
		var ln net.Listener
		port := restartablePortsFrom + rand.IntN(first-restartablePortsFrom)
		if ln, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			return ln
		}
	}
	t.Fatalf("no free loopback port between %d and %d: %v", restartablePortsFrom, first, err)
	return nil
}

// restartablePortsFrom is the lowest port listenRestartable picks: below
// it are the well-known ports of the machine's own services.
const restartablePortsFrom = 10000

// ephemeralFirst is the first port of the kernel's ephemeral range, or
// Linux's default where the range cannot be read (other systems start
// theirs higher still).
func ephemeralFirst() int {
	const linuxDefault = 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return linuxDefault
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return linuxDefault
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= restartablePortsFrom+1000 {
		return linuxDefault
	}
	return n
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
	b.mu.Lock()
	hold := b.hold
	b.mu.Unlock()
	if hold != nil {
		hold(r)
	}
	key := r.Header.Get("Idempotency-Key")
	b.mu.Lock()
	if b.refuse != nil && b.refuse(r) {
		b.mu.Unlock()
		http.Error(w, "this request is never accepted", http.StatusBadRequest)
		return
	}
	b.received[key]++
	b.writeHeaders = append(b.writeHeaders, r.Header.Clone())
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
	switch f {
	case faultApplyThenDrop:
		dropConnection(w)
		return
	case faultApplyThenHang:
		<-r.Context().Done()
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

// headersOfWrites returns the headers of the writes received, in order.
func (b *recordingBackend) headersOfWrites() []http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.writeHeaders)
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
	// timeout is both backends' timeout; zero means 15s: a machine loaded
	// by race-detector builds has been seen to take over 5s to answer
	// (504s in the 1,000-write test), and no test that leaves it zero
	// waits for a timeout.
	timeout time.Duration
	// maxAttempts is repairs.max_attempts; zero means 100000: repairs
	// never give up on their own.
	maxAttempts int
	// snapshot is state_snapshot; empty means a file in dir (not the
	// system's temporary folder, where a PostgreSQL store's would go).
	snapshot string
	// workers is repairs.workers; zero means 8.
	workers int
	// routes is the routes list; empty means dualWriteRoutes.
	routes string
	// grace is shutdown.grace; zero means 5s.
	grace time.Duration
	// defaultBackend is default; empty means legacy.
	defaultBackend string
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
		c.timeout = 15 * time.Second
	}
	if c.workers == 0 {
		c.workers = 8
	}
	if c.maxAttempts == 0 {
		c.maxAttempts = 100000
	}
	if c.snapshot == "" {
		c.snapshot = filepath.Join(dir, "state-snapshot.json")
	}
	if c.routes == "" {
		c.routes = dualWriteRoutes
	}
	if c.grace == 0 {
		c.grace = 5 * time.Second
	}
	if c.defaultBackend == "" {
		c.defaultBackend = "legacy"
	}
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
  tokens: [{name: test, token: %q, role: admin}]
backends:
  legacy: { url: %q, timeout: %s }
  modern: { url: %q, timeout: %s }
default: %s
debug_headers: true
shutdown: { delay: 0s, grace: %s }
store: %q
state_snapshot: %q
repairs: { backoff: 20ms, max_backoff: 300ms, max_attempts: %d, workers: %d }
routes:
%s`, e2eAdminToken, c.legacy, c.timeout, c.modern, c.timeout, c.defaultBackend, c.grace, c.store, c.snapshot, c.maxAttempts, c.workers, c.routes)
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
	return adminDoIf(t, admin, method, path, "", body)
}

// adminDoIf is adminDo with If-Match: ifMatch, unless it is empty.
func adminDoIf(t *testing.T, admin, method, path, ifMatch string, body any) (int, []byte) {
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
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
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
	line := func(r domain.RepairSummary) string {
		return fmt.Sprintf("%s %s %s seq=%d attempts=%d last_error=%q next=%v lease=%s until %v",
			r.State, r.ID, r.Resource, r.Seq, r.Attempts, r.LastError, r.NextAttemptAt, r.LeaseOwner, r.LeaseUntil)
	}
	for _, state := range []domain.State{domain.StateSent, domain.StatePending} {
		l, _ := st.ListRepairs(ctx, store.RepairFilter{State: state, Limit: 10})
		for _, r := range l {
			t.Log(line(r))
		}
		if state == domain.StatePending && len(l) > 0 {
			all, _ := st.ListRepairs(ctx, store.RepairFilter{ResourceKey: l[0].ResourceKey, Limit: 1000})
			for _, r := range all {
				if r.State != domain.StateDone {
					t.Log("  " + line(r))
				}
			}
		}
	}
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
