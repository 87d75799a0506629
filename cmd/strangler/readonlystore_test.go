package main

import (
	"database/sql"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// TestAPostgreSQLStoreMadeWritableAgainTakesWritesOnEveryConnection: the
// store's database is made read-only as managed services do when its
// storage runs out (ALTER DATABASE … SET default_transaction_read_only,
// which a session reads when it starts) and its sessions end. New dual
// writes answer 503 before the primary sees them and /readyz says the
// store refuses writes. Once the database is writable again, every dual
// write is taken within a few probes, with no restart: a session opened
// while it was read-only stays read-only for its life, so before, the
// pool's connections opened meanwhile refused writes for up to their
// 30-minute lifetime (some writes 200, others 503, /readyz flapping).
func TestAPostgreSQLStoreMadeWritableAgainTakesWritesOnEveryConnection(t *testing.T) {
	base := os.Getenv("STRANGLER_TEST_POSTGRES")
	if base == "" {
		base = testdb.DefaultPostgres
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("outage8_readonly_%d", time.Now().UnixNano())
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		testdb.Unavailable(t, "creating a database of its own on the test PostgreSQL", err)
	}
	// Dropped once the facade has stopped (cleanups run last first).
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			t.Errorf("dropping the test's database %s: %v", name, err)
		}
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name

	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	cfg := writeFacadeConfig(t, t.TempDir(), facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: u.String()})
	f := startRun(t, "serve", "--config", cfg)
	// writes sends n dual writes at once and counts their answers.
	sent := 0
	writes := func(n int) map[int]int {
		codes := map[int]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range n {
			sent++
			id := sent
			wg.Go(func() {
				code, _, _ := sendRequest("PUT", fmt.Sprintf("http://%s/items/ro-%d", f.public, id), fmt.Sprintf(`{"id":%d}`, id), nil)
				mu.Lock()
				codes[code]++
				mu.Unlock()
			})
		}
		wg.Wait()
		return codes
	}
	if codes := writes(8); codes[http.StatusOK] != 8 {
		t.Fatalf("dual writes before the database is read-only: %v, want 8 × 200", codes)
	}

	if _, err := admin.Exec("ALTER DATABASE " + name + " SET default_transaction_read_only = on"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "/readyz says the store refuses writes", func() bool {
		_, ready := getBody(t, "http://"+f.admin+"/readyz")
		return strings.Contains(ready, "state store refusing writes since")
	})
	onLegacy, _ := legacy.snapshot()
	before := len(onLegacy)
	if codes := writes(8); codes[http.StatusServiceUnavailable] != 8 {
		t.Errorf("dual writes to a read-only store: %v, want 8 × 503", codes)
	}
	if onLegacy, _ := legacy.snapshot(); len(onLegacy) != before {
		t.Errorf("the primary got %d writes the store refused, want none", len(onLegacy)-before)
	}

	if _, err := admin.Exec("ALTER DATABASE " + name + " RESET default_transaction_read_only"); err != nil {
		t.Fatal(err)
	}
	var last map[int]int
	testkit.Eventually(t, 30*time.Second, "every dual write is taken again", func() bool {
		last = writes(8)
		return last[http.StatusOK] == 8
	})
	for range 3 {
		if codes := writes(8); codes[http.StatusOK] != 8 {
			t.Errorf("dual writes once the store took them again: %v, want 8 × 200 every time", codes)
		}
	}
}
