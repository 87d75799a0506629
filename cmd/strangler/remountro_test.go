package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// ext4Disk loop-mounts a fresh ext4 file system of size bytes that
// turns read-only on an error (errors=remount-ro, as most distributions
// mount their disks), and returns its path and the file that makes the
// kernel report an error on it. It is unmounted when the test ends. It
// needs root, a loop device and ext4: the test is skipped without them,
// and fails then when STRANGLER_REQUIRE_DB=1.
func ext4Disk(t *testing.T, size int64) (dir, trigger string) {
	t.Helper()
	unavailable := func(err error) {
		if os.Getenv("STRANGLER_REQUIRE_DB") == "1" {
			t.Fatalf("a loop-mounted ext4 (needs root): %v", err)
		}
		t.Skipf("a loop-mounted ext4 needs root, a loop device and mkfs.ext4: %v", err)
	}
	img := filepath.Join(t.TempDir(), "disk.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", img).CombinedOutput(); err != nil {
		unavailable(fmt.Errorf("mkfs.ext4: %v: %s", err, out))
	}
	dir = t.TempDir()
	if out, err := exec.Command("mount", "-o", "loop,errors=remount-ro", img, dir).CombinedOutput(); err != nil {
		unavailable(fmt.Errorf("mount: %v: %s", err, out))
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	dev, err := exec.Command("findmnt", "-n", "-o", "SOURCE", dir).Output()
	if err != nil {
		unavailable(fmt.Errorf("findmnt: %v", err))
	}
	trigger = filepath.Join("/sys/fs/ext4", filepath.Base(strings.TrimSpace(string(dev))), "trigger_fs_error")
	if _, err := os.Stat(trigger); err != nil {
		unavailable(err)
	}
	return dir, trigger
}

// TestAStoreWhoseDiskTurnsReadOnly: the kernel finds an error on the
// embedded store's disk and remounts it read-only while a dual write is
// at the primary. That write's client gets the primary's 200 and its
// outcome is kept in memory; a new dual write answers 503 with a JSON
// error before the primary sees it; /readyz says the store refuses
// writes; pass-through reads go on.
func TestAStoreWhoseDiskTurnsReadOnly(t *testing.T) {
	disk, trigger := ext4Disk(t, 16<<20)
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	g := &gate{next: legacy, open: make(chan struct{})}
	primary := httptestServer(t, g.ServeHTTP)
	cfg := writeFacadeConfig(t, t.TempDir(), facadeConfig{
		legacy: primary.URL, modern: modern.URL(), store: "sqlite:" + filepath.Join(disk, "strangler.db"),
	})
	f := startRun(t, "serve", "--config", cfg)

	held := make(chan int, 1)
	go func() {
		code, _, _ := sendRequest("PUT", "http://"+f.public+"/items/in-flight", `{"at":"primary"}`, nil)
		held <- code
	}()
	testkit.Eventually(t, 10*time.Second, "the write is journaled and at the primary", func() bool { return g.waiting.Load() == 1 })
	if err := os.WriteFile(trigger, []byte("strangler test"), 0); err != nil {
		t.Fatal(err)
	}
	close(g.open)
	if code := <-held; code != http.StatusOK {
		t.Errorf("the write at the primary when the disk turned read-only: got %d, want the primary's 200", code)
	}

	code, body, _ := sendRequest("PUT", "http://"+f.public+"/items/later", `{"later":1}`, nil)
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, `{"error":`) {
		t.Errorf("a new dual write on a read-only disk: got %d %q, want 503 with a JSON error", code, body)
	}
	if onLegacy, _ := legacy.snapshot(); len(onLegacy) != 1 {
		t.Errorf("the primary got %d writes, want only the one in flight", len(onLegacy))
	}
	var ready string
	testkit.Eventually(t, 10*time.Second, "/readyz says the store refuses writes", func() bool {
		_, ready = getBody(t, "http://"+f.admin+"/readyz")
		return strings.Contains(ready, "state store refusing writes since")
	})
	if !strings.Contains(ready, "1 outcomes kept in memory") {
		t.Errorf("/readyz on a read-only disk: %q, want the in-flight write's outcome kept", ready)
	}
	if code, _, _ := sendRequest("GET", "http://"+f.public+"/items/in-flight", "", nil); code != http.StatusOK {
		t.Errorf("a pass-through read on a read-only disk: got %d, want 200", code)
	}
}
