package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"strangler/internal/testdb"

	"strangler/internal/testkit"
)

// These tests put the facade in front of things that fail the way real
// ones do at their worst: a state store that takes a statement and never
// answers it, a backend that answers half and then stalls. The facade must
// not make such an outage worse: every client gets an answer within the
// documented bounds, no write is lost, and the journal says what is
// known of each.

// lockJournal takes, in a session of its own, the lock a long migration
// or an operator's forgotten transaction holds on the PostgreSQL store's
// journal: every statement on it waits. release ends the session.
func lockJournal(t *testing.T, dsn string) (release func()) {
	t.Helper()
	return lockTable(t, dsn, "strangler_repairs")
}

// lockTable is lockJournal for any table of the store.
func lockTable(t *testing.T, dsn, table string) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "BEGIN; LOCK TABLE "+table+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		conn.Close(ctx)
		t.Fatal(err)
	}
	once := sync.OnceFunc(func() { conn.Close(ctx) })
	t.Cleanup(once)
	return once
}

// TestAJournalThatHangsHoldsNoRequest: another session holds a lock on
// the PostgreSQL store's journal, so each statement on it waits. A new
// dual write answers 503 within the store's bound (10s) and the primary
// never sees it; one that was at the primary gets the primary's answer
// within that bound, its outcome kept in memory; reads go on. Once the
// lock is gone, the kept write reaches the secondary and new writes are
// journaled again.
func TestAJournalThatHangsHoldsNoRequest(t *testing.T) {
	dsn := testdb.Postgres(t)
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	g := &gate{next: legacy, open: make(chan struct{})}
	primary := httptestServer(t, g.ServeHTTP)
	dir := t.TempDir()
	cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: primary.URL, modern: modern.URL(), store: dsn, timeout: 5 * time.Second})
	f := startRun(t, "serve", "--config", cfg)
	const bound = 10*time.Second + 3*time.Second // storeTimeout and a loaded machine's slack

	// A write at the primary when the lock is taken.
	type answer struct {
		code int
		body string
		err  error
		at   time.Time
	}
	held := make(chan answer, 1)
	go func() {
		code, body, err := sendRequest("PUT", "http://"+f.public+"/items/held", `{"v":1}`, nil)
		held <- answer{code, body, err, time.Now()}
	}()
	testkit.Eventually(t, 10*time.Second, "the write is journaled and at the primary", func() bool { return g.waiting.Load() == 1 })
	release := lockJournal(t, dsn)
	opened := time.Now()
	close(g.open)

	start := time.Now()
	code, body, err := sendRequest("PUT", "http://"+f.public+"/items/locked", `{"v":2}`, nil)
	if took := time.Since(start); code != http.StatusServiceUnavailable || !strings.Contains(body, `"error":`) || took > bound {
		t.Errorf("a new dual write while the journal is locked: got %d %q (%v) after %s, want 503 with a JSON error within %s",
			code, body, err, took.Round(time.Millisecond), bound)
	}
	a := <-held
	if took := a.at.Sub(opened); a.code != http.StatusOK || took > bound {
		t.Errorf("the write at the primary when the journal was locked: got %d %q (%v) %s after the primary answered, want its 200 within %s",
			a.code, a.body, a.err, took.Round(time.Millisecond), bound)
	}
	if code, _ := getBody(t, "http://"+f.public+"/items/held"); code != http.StatusOK {
		t.Errorf("a read while the journal is locked: got %d, want 200", code)
	}

	release()
	if code, body, err := sendRequest("PUT", "http://"+f.public+"/items/after", `{"v":3}`, nil); code != http.StatusOK {
		t.Errorf("a dual write after the lock is gone: %d %q %v", code, body, err)
	}
	waitDrained(t, openStateStore(t, dsn), 20*time.Second)
	onModern, _ := modern.snapshot()
	for key, want := range map[string]string{"held": `{"v":1}`, "after": `{"v":3}`} {
		if got := onModern[key]; got != want {
			t.Errorf("write %s on the secondary: got %q, want %q", key, got, want)
		}
	}
	onLegacy, _ := legacy.snapshot()
	_, onPrimary := onLegacy["locked"]
	_, onSecondary := onModern["locked"]
	if onPrimary || onSecondary {
		t.Errorf("the write refused with 503 reached a backend (primary %t, secondary %t)", onPrimary, onSecondary)
	}
}

// TestACreateWhoseAnswerStallsIsAnsweredInTime: on a route with id_field
// the facade reads the start of the primary's answer for the new id before
// the client gets any of it. A primary that sends its 201 head and then
// stalls mid-body (or sends a body shorter than its Content-Length and
// closes) leaves the client with a clear JSON error within the backend's
// timeout, never a hang or a cut-off "201"; the write, which the primary
// answered 2xx, is queued for the secondary all the same.
func TestACreateWhoseAnswerStallsIsAnsweredInTime(t *testing.T) {
	stop := make(chan struct{})
	primary := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		switch r.Header.Get("X-Test") {
		case "stall":
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id":"7`)
			http.NewResponseController(w).Flush()
			select {
			case <-stop:
			case <-r.Context().Done():
			}
		case "short":
			conn, bw, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			bw.WriteString("HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":\"8")
			bw.Flush()
			conn.Close()
		}
	})
	t.Cleanup(func() { close(stop) }) // before the server closes: it waits for its handlers
	modern := newRecordingBackend(t, "modern", true, true)
	dir := t.TempDir()
	const timeout = 2 * time.Second
	cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: primary.URL, modern: modern.URL(), timeout: timeout})
	f := startRun(t, "serve", "--config", cfg)
	for _, c := range []struct {
		fault string
		code  int
	}{
		{"stall", http.StatusGatewayTimeout},
		{"short", http.StatusBadGateway},
	} {
		t.Run(c.fault, func(t *testing.T) {
			start := time.Now()
			code, body, err := sendRequest("POST", "http://"+f.public+"/items", `{"v":1}`, map[string]string{"X-Test": c.fault})
			took := time.Since(start)
			if code != c.code || !strings.Contains(body, `"error":`) || err != nil {
				t.Errorf("got %d %q (%v) after %s, want %d with a JSON error", code, body, err, took.Round(time.Millisecond), c.code)
			}
			if took > timeout+3*time.Second {
				t.Errorf("the answer took %s, want it within the backend's timeout (%s)", took.Round(time.Millisecond), timeout)
			}
		})
	}
	st := openStateStore(t, "sqlite:"+filepath.Join(dir, "strangler.db"))
	waitDrained(t, st, 20*time.Second)
	if received, _ := modern.counts(); len(received) != 2 {
		t.Errorf("the secondary received %v, want the two writes the primary answered 201", received)
	}
}

// TestAStoreFileRemovedWhileServing: the embedded store's directory is
// removed while the facade runs (a clean-up script, an operator's
// mistake). SQLite would go on writing to the removed file, so dual
// writes would "succeed" into a journal gone at the next restart. They
// answer 503 instead and reach no backend; reads go on, and /readyz and
// strangler_store_up say the store refuses writes. Once the directory is
// back, the facade writes what its store held back to the path, and a
// restart finds it: the write journaled before the removal reaches the
// secondary.
func TestAStoreFileRemovedWhileServing(t *testing.T) {
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	modern.stop() // the first write waits in the journal
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	if err := os.Mkdir(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	dbPath := filepath.Join(stateDir, "strangler.db")
	cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: "sqlite:" + dbPath})
	f := startRun(t, "serve", "--config", cfg)
	if code, body, err := sendRequest("PUT", "http://"+f.public+"/items/before", `{"v":1}`, nil); code != http.StatusOK {
		t.Fatalf("a dual write before the removal: %d %q %v", code, body, err)
	}

	if err := os.RemoveAll(stateDir); err != nil {
		t.Fatal(err)
	}
	code, body, err := sendRequest("PUT", "http://"+f.public+"/items/removed", `{"v":2}`, nil)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, `"error":`) {
		t.Errorf("a dual write with the store's file removed: got %d %q (%v), want 503 with a JSON error", code, body, err)
	}
	if onLegacy, _ := legacy.snapshot(); onLegacy["removed"] != "" {
		t.Error("the write refused with 503 reached the primary")
	}
	if code, _ := getBody(t, "http://"+f.public+"/items/before"); code != http.StatusOK {
		t.Errorf("a read with the store's file removed: got %d, want 200", code)
	}
	if _, ready := getBody(t, "http://"+f.admin+"/readyz"); !strings.Contains(ready, "state store refusing writes") {
		t.Errorf("/readyz with the store's file removed: got %q, want degraded, refusing writes", ready)
	}
	if v := metricValue(t, f.admin, "strangler_store_up"); v != "0" {
		t.Errorf("strangler_store_up with the store's file removed: got %q, want 0", v)
	}

	if err := os.Mkdir(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the store's contents are written back to its path", func() bool {
		sendRequest("PUT", "http://"+f.public+"/items/nudge", `{"v":3}`, nil)
		_, err := os.Stat(dbPath)
		return err == nil
	})
	if code, _, _ := sendRequest("PUT", "http://"+f.public+"/items/copied", `{"v":4}`, nil); code != http.StatusServiceUnavailable {
		t.Errorf("a dual write after the copy, before a restart: got %d, want 503", code)
	}

	f.stop()
	<-f.done
	f.done <- nil // for the cleanup's wait
	modern.start()
	f = startRun(t, "serve", "--config", cfg)
	if code, body, err := sendRequest("PUT", "http://"+f.public+"/items/after", `{"v":5}`, nil); code != http.StatusOK {
		t.Errorf("a dual write after the restart: %d %q %v", code, body, err)
	}
	waitDrained(t, openStateStore(t, "sqlite:"+dbPath), 20*time.Second)
	onModern, _ := modern.snapshot()
	for key, want := range map[string]string{"before": `{"v":1}`, "after": `{"v":5}`} {
		if got := onModern[key]; got != want {
			t.Errorf("write %s on the secondary: got %q, want %q", key, got, want)
		}
	}
	onLegacy, _ := legacy.snapshot()
	for _, key := range []string{"removed", "nudge", "copied"} {
		if onLegacy[key] != "" || onModern[key] != "" {
			t.Errorf("the write %s, refused with 503, reached a backend", key)
		}
	}
}

// brokenBackend reads each request, body and all, and then does to its
// connection what answer does, until answer returns or the connection
// breaks.
func brokenBackend(t *testing.T, answer func(c *net.TCPConn)) string {
	t.Helper()
	addr := testkit.ServeConns(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		length := 0
		for {
			h, err := br.ReadString('\n')
			if err != nil || h == "\r\n" {
				break
			}
			fmt.Sscanf(strings.ToLower(h), "content-length: %d", &length)
		}
		io.CopyN(io.Discard, br, int64(length))
		answer(c.(*net.TCPConn))
	})
	return "http://" + addr
}

// floodingBackend answers each request with 1xx responses (msg) without
// end, until the connection breaks.
func floodingBackend(t *testing.T, msg string) string {
	return brokenBackend(t, func(c *net.TCPConn) {
		for {
			if _, err := io.WriteString(c, msg); err != nil {
				return
			}
		}
	})
}

// TestABackendFloodingInformationalAnswersGets502: a backend that answers
// 1xx responses without end (103 Early Hints, or 100 Continue) had every
// one passed on to the client until the backend's timeout: hundreds of
// thousands in two seconds, which a client built on Go's net/http refuses
// once they add up to 10 MiB, with an error of its own. The facade passes
// on a few and
// answers 502 with a JSON error at once; a dual write to such a primary
// is left unknown: it had the request.
func TestABackendFloodingInformationalAnswersGets502(t *testing.T) {
	legacy := newRecordingBackend(t, "legacy", false, false)
	for _, c := range []struct{ name, msg string }{
		{"103 Early Hints", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"},
		{"100 Continue", "HTTP/1.1 100 Continue\r\n\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			flood := floodingBackend(t, c.msg)
			dir := t.TempDir()
			const timeout = 10 * time.Second
			cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: flood, modern: legacy.URL(), timeout: timeout, routes: `
  - {name: put-item, match: "PUT /items/{id}", mode: dual-write}
  - {name: get-item, match: "GET /items/{id}", mode: legacy}
`})
			f := startRun(t, "serve", "--config", cfg)
			for _, r := range []struct{ method, path string }{{"GET", "/items/1"}, {"PUT", "/items/2"}} {
				start := time.Now()
				code, body, err := sendRequest(r.method, "http://"+f.public+r.path, `{"v":1}`, nil)
				if took := time.Since(start); code != http.StatusBadGateway || !strings.Contains(body, `"error":`) || took > timeout/2 {
					t.Errorf("%s %s: got %d %q (%v) after %s, want 502 with a JSON error before the backend's timeout",
						r.method, r.path, code, body, err, took.Round(time.Millisecond))
				}
			}
			st := openStateStore(t, "sqlite:"+filepath.Join(dir, "strangler.db"))
			if depth := queueDepth(t, st); depth["unknown"] != 1 {
				t.Errorf("the journal after a dual write to a flooding primary: %v, want it unknown", depth)
			}
		})
	}
}

// TestTheGuardIgnoresLegacyBeingDown: legacy refuses connections while
// modern answers. A fallback route whose modern answers 404 (legacy's 502
// reaches the client), a route sending half its traffic to modern and a
// write route falling back on nothing: the guard judges modern by
// modern's answers alone, so none is rolled back.
func TestTheGuardIgnoresLegacyBeingDown(t *testing.T) {
	modern := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/lookups/") {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, "ok")
	})
	dir := t.TempDir()
	cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: "http://" + refusedAddr(t), modern: modern.URL, timeout: time.Second, routes: `
  - {name: lookups, match: "GET /lookups/{id}", mode: fallback, guard: {max_error_rate: 5%, window: 1m, min_requests: 3}}
  - {name: reads, match: "GET /reads/{id}", mode: modern, percent: 50, guard: {max_error_rate: 5%, window: 1m, min_requests: 3}}
  - {name: writes, match: "POST /writes", mode: fallback, guard: {max_error_rate: 5%, window: 1m, min_requests: 3}}
`})
	f := startRun(t, "serve", "--config", cfg)
	legacyFailed := 0
	// The guard looks every second: 2.5 s of traffic, with legacy's
	// failures well past max_error_rate.
	for deadline := time.Now().Add(2500 * time.Millisecond); time.Now().Before(deadline); {
		for _, r := range []struct{ method, path string }{{"GET", "/lookups/1"}, {"GET", "/reads/1"}, {"POST", "/writes"}} {
			if code, _, _ := sendRequest(r.method, "http://"+f.public+r.path, "", nil); code == http.StatusBadGateway {
				legacyFailed++
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if legacyFailed < 10 {
		t.Fatalf("only %d requests failed at legacy: the test needs legacy's failures", legacyFailed)
	}
	for _, route := range []string{"lookups", "reads", "writes"} {
		var rt struct {
			Held map[string]any `json:"held"`
		}
		adminGetJSON(t, f.admin, "/admin/routes/"+route, &rt)
		if rt.Held != nil {
			t.Errorf("route %s was rolled back and held (%v) because legacy was down", route, rt.Held)
		}
	}
}

// blackholeAddr is an address that takes no connection and refuses none:
// a listener whose queue is full and that never accepts, so that a
// connection attempt waits, as to a host that went away.
func blackholeAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*syscall.SockaddrInet4).Port)
	for range 8 { // fill the queue
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}

// TestADualWriteToABrokenPrimaryIsJournaledAsWhatItIs: a dual write's
// primary fails in each way a backend does. The client gets a JSON 502 or
// 504 within the backend's timeout, the secondary gets nothing, and the
// journal says what is known: a primary that may have the request leaves
// the write unknown, for an operator; one that provably never got it (no
// connection) leaves it skipped.
func TestADualWriteToABrokenPrimaryIsJournaledAsWhatItIs(t *testing.T) {
	const timeout = time.Second
	modern := newRecordingBackend(t, "modern", true, true)
	for _, c := range []struct {
		name    string
		primary func(t *testing.T) string
		code    int
		unknown bool
	}{
		{"accepts and never answers", func(t *testing.T) string {
			return brokenBackend(t, func(c *net.TCPConn) { io.Copy(io.Discard, c) })
		}, http.StatusGatewayTimeout, true},
		{"resets the connection after the request", func(t *testing.T) string {
			return brokenBackend(t, func(c *net.TCPConn) { c.SetLinger(0) })
		}, http.StatusBadGateway, true},
		{"sends an invalid status line", func(t *testing.T) string {
			return brokenBackend(t, func(c *net.TCPConn) { io.WriteString(c, "HTTP/1.1 OK\r\n\r\n") })
		}, http.StatusBadGateway, true},
		{"refuses connections", func(t *testing.T) string { return "http://" + refusedAddr(t) }, http.StatusBadGateway, false},
		{"is a blackhole", func(t *testing.T) string { return "http://" + blackholeAddr(t) }, http.StatusGatewayTimeout, false},
		{"has a name that does not resolve", func(t *testing.T) string { return "http://strangler-gone.invalid:8080" }, http.StatusBadGateway, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: c.primary(t), modern: modern.URL(), timeout: timeout})
			f := startRun(t, "serve", "--config", cfg)
			start := time.Now()
			code, body, err := sendRequest("PUT", "http://"+f.public+"/items/"+strings.ReplaceAll(c.name, " ", "-"), `{"v":1}`, nil)
			if took := time.Since(start); code != c.code || !strings.Contains(body, `"error":`) || took > timeout+3*time.Second {
				t.Errorf("got %d %q (%v) after %s, want %d with a JSON error within the backend's timeout (%s)",
					code, body, err, took.Round(time.Millisecond), c.code, timeout)
			}
			st := openStateStore(t, "sqlite:"+filepath.Join(dir, "strangler.db"))
			depth := queueDepth(t, st)
			skipped := metricValue(t, f.admin, `strangler_dualwrite_total{result="skipped",route="put-item"}`)
			switch {
			case c.unknown && (depth["unknown"] != 1 || depth["pending"]+depth["sent"] != 0):
				t.Errorf("the journal: %v, want the write unknown: the primary may have it", depth)
			case !c.unknown && (depth["unknown"]+depth["pending"]+depth["sent"] != 0 || skipped != "1"):
				t.Errorf("the journal: %v and %s skipped, want the write skipped: the primary never got it", depth, skipped)
			}
		})
	}
	if onModern, _ := modern.snapshot(); len(onModern) != 0 {
		t.Errorf("the secondary got %v, want no write the primary did not answer 2xx", onModern)
	}
}
