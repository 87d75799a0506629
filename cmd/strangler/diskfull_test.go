package main

import (
	"errors"
	"fmt"
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

// smallDisk mounts a tmpfs of size bytes and returns its path; it is
// unmounted when the test ends. Mounting needs root (CI runs as root): the
// test is skipped without it, and fails then when STRANGLER_REQUIRE_DB=1.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		if os.Getenv("STRANGLER_REQUIRE_DB") == "1" {
			t.Fatalf("mounting a small tmpfs for a full disk (needs root): %v", err)
		}
		t.Skipf("mounting a small tmpfs for a full disk needs root: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// fill writes a file in dir until the disk is full, and returns it.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return path
		}
	}
}

// gate holds requests to a backend until it is opened, and counts the
// ones it holds.
type gate struct {
	next    http.Handler
	open    chan struct{}
	waiting atomic.Int32
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		g.waiting.Add(1)
		<-g.open
	}
	g.next.ServeHTTP(w, r)
}

// TestDualWritesWhenTheDiskIsFull: the embedded store's disk fills while
// dual writes are at the primary. Their clients get the primary's 200s;
// the outcomes the store refuses are kept in memory, /readyz and the
// metrics say the store refuses writes, new dual writes answer 503. Once
// the disk is freed every acknowledged write is recorded and reaches the
// secondary: none is left unknown.
func TestDualWritesWhenTheDiskIsFull(t *testing.T) {
	disk := smallDisk(t, 4<<20)
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	g := &gate{next: legacy, open: make(chan struct{})}
	primary := httptestServer(t, g.ServeHTTP)
	dir := t.TempDir()
	cfg := writeFacadeConfig(t, dir, facadeConfig{
		legacy: primary.URL, modern: modern.URL(), store: "sqlite:" + filepath.Join(disk, "strangler.db"), timeout: 10 * time.Second,
	})
	f := startRun(t, "serve", "--config", cfg)

	const writes = 5
	codes := make([]int, writes)
	var wg sync.WaitGroup
	for i := range writes {
		wg.Go(func() {
			codes[i], _, _ = sendRequest("PUT", fmt.Sprintf("http://%s/items/full-%d", f.public, i), fmt.Sprintf(`{"i":%d}`, i), nil)
		})
	}
	testkit.Eventually(t, 10*time.Second, "the writes are journaled and at the primary", func() bool { return g.waiting.Load() == writes })
	filler := fill(t, disk)
	close(g.open)
	wg.Wait()
	for i, code := range codes {
		if code != http.StatusOK {
			t.Errorf("write %d: got %d, want the primary's 200", i, code)
		}
	}

	_, ready := getBody(t, "http://"+f.admin+"/readyz")
	if !strings.Contains(ready, "degraded: state store refusing writes since") || !strings.Contains(ready, fmt.Sprintf("%d outcomes kept in memory", writes)) {
		t.Errorf("/readyz with the disk full: got %q, want degraded, refusing writes, %d outcomes kept", ready, writes)
	}
	if v := metricValue(t, f.admin, "strangler_store_up"); v != "0" {
		t.Errorf("strangler_store_up with the disk full: got %q, want 0", v)
	}
	if v := metricValue(t, f.admin, "strangler_store_write_errors_total"); v == "0" || v == "" {
		t.Errorf("strangler_store_write_errors_total with the disk full: got %q, want the refusals counted", v)
	}
	if code, _, _ := sendRequest("PUT", "http://"+f.public+"/items/later", `{"later":1}`, nil); code != http.StatusServiceUnavailable {
		t.Errorf("a new dual write with the disk full: got %d, want 503", code)
	}
	if onModern, _ := modern.snapshot(); len(onModern) != 0 {
		t.Errorf("the secondary got %d writes whose outcomes are not recorded yet, want none", len(onModern))
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the held outcomes are recorded", func() bool {
		_, ready := getBody(t, "http://"+f.admin+"/readyz")
		return ready == "ready\n"
	})
	st := openStateStore(t, "sqlite:"+filepath.Join(disk, "strangler.db"))
	waitDrained(t, st, 20*time.Second)
	onModern, _ := modern.snapshot()
	for i := range writes {
		if got, want := onModern[fmt.Sprintf("full-%d", i)], fmt.Sprintf(`{"i":%d}`, i); got != want {
			t.Errorf("write %d on the secondary: got %q, want %q", i, got, want)
		}
	}
	if _, ok := onModern["later"]; ok {
		t.Error("the write refused with 503 reached the secondary")
	}
}

// TestAFullDiskShowsOnReadyzBeforeAnyWrite: the embedded store's disk
// fills while no client writes. Within a few write probes /readyz says
// the store refuses writes and strangler_store_up is 0, so a balancer can
// stop sending writes before a client's write is refused; freeing the
// disk clears it, again with no client write.
func TestAFullDiskShowsOnReadyzBeforeAnyWrite(t *testing.T) {
	disk := smallDisk(t, 4<<20)
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	dir := t.TempDir()
	cfg := writeFacadeConfig(t, dir, facadeConfig{
		legacy: legacy.URL(), modern: modern.URL(), store: "sqlite:" + filepath.Join(disk, "strangler.db"), timeout: 10 * time.Second,
	})
	f := startRun(t, "serve", "--config", cfg)
	if _, ready := getBody(t, "http://"+f.admin+"/readyz"); ready != "ready\n" {
		t.Fatalf("/readyz before the disk fills: got %q, want ready", ready)
	}

	filler := fill(t, disk)
	var ready string
	testkit.Eventually(t, 20*time.Second, "/readyz says the store refuses writes", func() bool {
		_, ready = getBody(t, "http://"+f.admin+"/readyz")
		return strings.Contains(ready, "degraded: state store refusing writes since")
	})
	if !strings.Contains(ready, "0 outcomes kept in memory") {
		t.Errorf("/readyz with the disk full and no write sent: got %q, want 0 outcomes kept", ready)
	}
	if v := metricValue(t, f.admin, "strangler_store_up"); v != "0" {
		t.Errorf("strangler_store_up with the disk full: got %q, want 0", v)
	}
	if v := metricValue(t, f.admin, "strangler_store_write_errors_total"); v == "0" || v == "" {
		t.Errorf("strangler_store_write_errors_total with the disk full: got %q, want the refused probes counted", v)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "/readyz is ready again", func() bool {
		_, ready = getBody(t, "http://"+f.admin+"/readyz")
		return ready == "ready\n"
	})
	if v := metricValue(t, f.admin, "strangler_store_up"); v != "1" {
		t.Errorf("strangler_store_up with the disk freed: got %q, want 1", v)
	}
	onLegacy, _ := legacy.snapshot()
	onModern, _ := modern.snapshot()
	if len(onLegacy)+len(onModern) != 0 {
		t.Errorf("the backends got %d writes, want none: no client wrote", len(onLegacy)+len(onModern))
	}
}
