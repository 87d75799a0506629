package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// TestASIGTERMReleasesTheLeasesOfWritesNotSent: a dual write handed to
// the worker while its only slot holds a delivery the secondary does not
// answer is, at SIGTERM, released rather than kept leased: when the
// process is then killed (the orchestrator's kill comes while that
// delivery hangs), the restarted facade delivers the write at once,
// instead of after its lease (55 s with a 10 s backend timeout) passes.
// The delivery under way at the kill keeps its lease: it may have been
// applied, and the restart does not send it again before the lease
// passes.
func TestASIGTERMReleasesTheLeasesOfWritesNotSent(t *testing.T) {
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	held := make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(held) }) })
	var arrivedA atomic.Int32
	arrived := make(chan string, 10)
	modern.mu.Lock()
	modern.hold = func(r *http.Request) {
		arrived <- r.URL.Path
		if r.URL.Path == "/items/a" {
			arrivedA.Add(1)
			<-held
		}
	}
	modern.mu.Unlock()
	dir := t.TempDir()
	cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL(), timeout: 10 * time.Second, workers: 1})
	p := startProcess(t, "serve", "--config", cfg)
	if code, body, err := sendRequest("PUT", "http://"+p.public+"/items/a", `{"v":1}`, nil); code != http.StatusOK {
		t.Fatalf("PUT /items/a: %d %q %v", code, body, err)
	}
	select {
	case got := <-arrived:
		if got != "/items/a" {
			t.Fatalf("the secondary got %s, want /items/a", got)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the delivery of a: nothing after 20 s")
	}
	if code, body, err := sendRequest("PUT", "http://"+p.public+"/items/b", `{"v":2}`, nil); code != http.StatusOK {
		t.Fatalf("PUT /items/b: %d %q %v", code, body, err)
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The kill comes while a's delivery hangs; the release is wanted
	// before it, and is logged.
	// (A fixed 2 s for it, then the kill anyway, let a loaded machine kill
	// the process before the release, and b wait out its 55 s lease.)
	p.logs.waitFor(t, "released the leases of dual writes not delivered before shutdown", nil, 30*time.Second)
	p.cmd.Process.Kill()
	p.cmd.Wait()
	killed := time.Now()
	if items, _ := modern.snapshot(); items["b"] != "" {
		t.Fatal("b reached the secondary before the kill: a's delivery was meant to hang until then")
	}
	once.Do(func() { close(held) }) // the secondary answers again

	startProcess(t, "serve", "--config", cfg) // the restart
	// aBefore is how many times a had reached the secondary when b did.
	var aBefore int32
	took := testkit.Eventually(t, 60*time.Second, "b on the secondary after the restart", func() bool {
		aBefore = arrivedA.Load()
		items, _ := modern.snapshot()
		return items["b"] == `{"v":2}`
	})
	t.Logf("b reached the secondary %v after the restart was ready, %v after the kill",
		took.Round(10*time.Millisecond), time.Since(killed).Round(10*time.Millisecond))
	// At once, on a quiet machine; the bound is generous for a loaded one,
	// and far short of the 55 s lease b would otherwise wait out.
	if took > 20*time.Second {
		t.Errorf("b reached the secondary %v after the restart, want at once (its lease released at SIGTERM)", took.Round(10*time.Millisecond))
	}
	if n := aBefore; n != 1 {
		t.Errorf("a, under way at the kill, had reached the secondary %d times when b did, want once: its lease is kept", n)
	}
}

// TestAStoreFileRemovedIsReportedWithoutWrites: with the embedded
// store's file removed and no write traffic at all, /readyz says the
// store refuses writes and strangler_store_up is 0, and both still say so
// more than 30 s after the last refused write: writes stay refused until
// a restart, so health says so for as long.
func TestAStoreFileRemovedIsReportedWithoutWrites(t *testing.T) {
	// It waits out failingWindow: with the other waiting tests.
	t.Parallel()
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	if err := os.Mkdir(stateDir, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: "sqlite:" + filepath.Join(stateDir, "strangler.db")})
	f := startRun(t, "serve", "--config", cfg)
	if v := metricValue(t, f.admin, "strangler_store_up"); v != "1" {
		t.Fatalf("strangler_store_up before the removal: got %q, want 1", v)
	}
	if err := os.RemoveAll(stateDir); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		if code, ready := getBody(t, "http://"+f.admin+"/readyz"); code != http.StatusOK || !strings.Contains(ready, "state store refusing writes") {
			t.Errorf("/readyz %s: got %d %q, want 200, degraded, refusing writes", when, code, ready)
		}
		if v := metricValue(t, f.admin, "strangler_store_up"); v != "0" {
			t.Errorf("strangler_store_up %s: got %q, want 0", when, v)
		}
	}
	check("with the store's file removed, before any write")
	if code, _, _ := sendRequest("PUT", "http://"+f.public+"/items/refused", `{"v":1}`, nil); code != http.StatusServiceUnavailable {
		t.Errorf("a dual write with the store's file removed: got %d, want 503", code)
	}
	time.Sleep(31 * time.Second)
	check("31 s after the last refused write")
}

// TestADualWriteStillAtThePrimaryWhenGraceEndsIsRecorded: a dual write
// whose primary has not answered when shutdown.grace ends has its client
// cut off, but the primary may apply it: the process waits for the
// primary's answer and records it before it exits, so the write ends
// pending (or delivered), not sent, which a restart would turn into
// unknown for an operator.
func TestADualWriteStillAtThePrimaryWhenGraceEndsIsRecorded(t *testing.T) {
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	atPrimary, release := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	t.Cleanup(func() { once.Do(func() { close(release) }) })
	legacy.mu.Lock()
	legacy.hold = func(r *http.Request) {
		atPrimary <- struct{}{}
		<-release
	}
	legacy.mu.Unlock()
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "strangler.db")
	cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL(), timeout: 10 * time.Second, grace: time.Second})
	p := startProcess(t, "serve", "--config", cfg)
	go sendRequest("PUT", "http://"+p.public+"/items/slow", `{"v":1}`, nil)
	select {
	case <-atPrimary:
	case <-time.After(20 * time.Second):
		t.Fatal("the write did not reach the primary")
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { p.cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(3 * time.Second): // grace (1 s) has passed
	}
	once.Do(func() { close(release) })
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the facade did not exit 30 s after the primary answered")
	}
	st := openStateStore(t, dsn)
	d := queueDepth(t, st)
	onModern, _ := modern.snapshot()
	if d["sent"] != 0 || d["unknown"] != 0 || d["pending"] == 0 && onModern["slow"] == "" {
		t.Errorf("after the exit the queue holds %v (the secondary %d items); want the write pending or delivered, not sent or unknown", d, len(onModern))
	}
}
