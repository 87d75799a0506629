package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// leaveFree fills the file system at dir until about free bytes are left
// on it, and returns the file that holds the rest.
func leaveFree(t *testing.T, dir string, free int64) string {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	if err := os.WriteFile(filler, make([]byte, int64(st.Bavail)*st.Bsize-free), 0o600); err != nil {
		t.Fatal(err)
	}
	return filler
}

// facadeWithLittleRoom serves a facade whose embedded store sits on a
// small file system of its own, takes one dual write, then fills that
// file system until 6 MiB are left: more than the store's headroom, less
// than a large write needs. dsn is the store's.
func facadeWithLittleRoom(t *testing.T) (f *running, legacy, modern *recordingBackend, dsn string) {
	t.Helper()
	disk := smallDisk(t, 24<<20)
	legacy = newRecordingBackend(t, "legacy", false, false)
	modern = newRecordingBackend(t, "modern", true, true)
	dsn = "sqlite:" + filepath.Join(disk, "strangler.db")
	cfg := writeFacadeConfig(t, t.TempDir(), facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: dsn})
	f = startRun(t, "serve", "--config", cfg)
	if code, body, err := sendRequest("PUT", "http://"+f.public+"/items/before", `{"small":0}`, nil); code != http.StatusOK {
		t.Fatalf("a write before the disk fills: got %d %s %v, want 200", code, body, err)
	}
	leaveFree(t, disk, 6<<20)
	return f, legacy, modern, dsn
}

// TestAWriteLargerThanTheStoresRoomFillsNothing: the embedded store's
// disk has 6 MiB free, more than its headroom, and clients send dual
// writes within max_replay_body too large for it: one larger than what
// is free, one (2 MiB) that fits but not with its outcome, which writes
// its body again. They answer 503 before the primary sees them, and the
// store goes on taking every other write, to the same items too, and
// /readyz is ready. Before, such a write was begun, its pages filled the
// disk through the write-ahead log, and with no room left for a
// checkpoint to copy the log into the database file, every dual write
// answered 503 from then on, until an operator freed space.
func TestAWriteLargerThanTheStoresRoomFillsNothing(t *testing.T) {
	f, legacy, modern, dsn := facadeWithLittleRoom(t)

	large := func(size int) string { return `{"p":"` + strings.Repeat("x", size) + `"}` }
	// The first is larger than what is free; the second fits, but not
	// with its outcome, which writes its body again; so does the third,
	// which a client names with an Idempotency-Key.
	for _, w := range []struct {
		name string
		size int
		key  string
	}{{"larger", 9 << 20, ""}, {"fits", 2 << 20, ""}, {"keyed", 2 << 20, "redteam23-keyed"}} {
		var header map[string]string
		if w.key != "" {
			header = map[string]string{"Idempotency-Key": w.key}
		}
		code, answer, err := sendRequest("PUT", "http://"+f.public+"/items/"+w.name, large(w.size), header)
		if code != http.StatusServiceUnavailable || !strings.Contains(answer, `"error"`) {
			t.Errorf("a write of %d MiB with 6 MiB free: got %d %.100s %v, want 503 with a JSON error", w.size>>20, code, answer, err)
		}
		if onLegacy, _ := legacy.snapshot(); onLegacy[w.name] != "" {
			t.Errorf("the primary got the write of %d MiB refused with 503", w.size>>20)
		}
	}

	for i := range 5 {
		for _, name := range []string{"larger", "fits", "keyed", fmt.Sprintf("small-%d", i)} {
			if code, answer, err := sendRequest("PUT", "http://"+f.public+"/items/"+name, fmt.Sprintf(`{"small":%d}`, i), nil); code != http.StatusOK {
				t.Errorf("a small write to %s after the large ones: got %d %s %v, want 200", name, code, answer, err)
			}
		}
	}
	if _, ready := getBody(t, "http://"+f.admin+"/readyz"); ready != "ready\n" {
		t.Errorf("/readyz after the large writes were refused: got %q, want ready", ready)
	}
	onLegacy, _ := legacy.snapshot()
	st := openStateStore(t, dsn)
	waitDrained(t, st, 20*time.Second)
	testkit.Eventually(t, 10*time.Second, "the secondary holds what the primary holds", func() bool {
		onModern, _ := modern.snapshot()
		return len(onModern) == len(onLegacy)
	})
	sameRecords(t, legacy, modern)
}
