package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// TestAWriteAheadLogThatFilledTheDiskIsReclaimedOnceTheReaderLeaves: a
// reader in another session (an operator's sqlite3 shell left in a
// transaction, a long backup) holds the embedded store's checkpoints
// back, so its write-ahead log grows under dual writes until the small
// disk is full. New writes answer 503 before the primary sees them. Once
// the reader leaves, the store recovers by itself, with no client write
// and no restart: /readyz is ready, a new write is taken, and every write
// a client saw succeed reaches the secondary. Before, the log had taken
// the room the checkpoint needed to copy it into the database file, so no
// checkpoint could finish and every write stayed refused (an 8 MiB disk:
// still refusing 30 s after).
func TestAWriteAheadLogThatFilledTheDiskIsReclaimedOnceTheReaderLeaves(t *testing.T) {
	disk := smallDisk(t, 6<<20)
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	dbPath := filepath.Join(disk, "strangler.db")
	cfg := writeFacadeConfig(t, t.TempDir(), facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: "sqlite:" + dbPath})
	f := startRun(t, "serve", "--config", cfg)

	reader, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	tx, err := reader.Begin()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM strangler_repairs`).Scan(&n); err != nil {
		t.Fatal(err)
	}

	body := func(i int) string { return fmt.Sprintf(`{"i":%d,"pad":%q}`, i, strings.Repeat("x", 32<<10)) }
	var acknowledged []int
	refused := 0
	for i := 0; i < 1000 && refused < 3; i++ {
		code, answer, _ := sendRequest("PUT", fmt.Sprintf("http://%s/items/wal-%d", f.public, i), body(i), nil)
		switch code {
		case http.StatusOK:
			acknowledged = append(acknowledged, i)
		case http.StatusServiceUnavailable:
			refused++
			var e struct{ Error string }
			if json.Unmarshal([]byte(answer), &e) != nil || e.Error == "" {
				t.Errorf("write %d refused with %q, want a JSON error", i, answer)
			}
		default:
			t.Fatalf("write %d: got %d %s, want 200 or 503", i, code, answer)
		}
	}
	if refused == 0 || len(acknowledged) == 0 {
		t.Fatalf("%d writes taken and %d refused: the disk never filled, or nothing was written", len(acknowledged), refused)
	}
	onLegacy, _ := legacy.snapshot()
	if len(onLegacy) != len(acknowledged) {
		t.Errorf("the primary got %d writes, want the %d acknowledged ones: a refused write reached it", len(onLegacy), len(acknowledged))
	}

	// Delivered while the reader still holds the checkpoints back, so
	// that once it leaves no write but the probe's comes.
	testkit.Eventually(t, 30*time.Second, "the acknowledged writes reach the secondary", func() bool {
		onModern, _ := modern.snapshot()
		return len(onModern) == len(acknowledged)
	})
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	reader.Close()
	testkit.Eventually(t, 30*time.Second, "/readyz is ready again without a client's write", func() bool {
		_, ready := getBody(t, "http://"+f.admin+"/readyz")
		return ready == "ready\n"
	})
	if code, answer, _ := sendRequest("PUT", "http://"+f.public+"/items/after", `{"after":1}`, nil); code != http.StatusOK {
		t.Errorf("a write once the reader left: got %d %s, want 200", code, answer)
	}
	st := openStateStore(t, "sqlite:"+dbPath)
	waitDrained(t, st, 30*time.Second)
	onModern, _ := modern.snapshot()
	if len(onModern) != len(acknowledged)+1 {
		t.Errorf("the secondary holds %d writes, want the %d acknowledged and the one after", len(onModern), len(acknowledged))
	}
	for _, i := range acknowledged {
		if got, want := onModern[fmt.Sprintf("wal-%d", i)], body(i); got != want {
			t.Errorf("acknowledged write %d on the secondary: got %.40q, want %.40q", i, got, want)
		}
	}
}
