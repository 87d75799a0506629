package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// TestTheGuardRollsBackOnceTheStoreTakesWritesAgain: modern dies on a
// guarded route while the embedded store's disk is full. A rollback
// that cannot be audited is not made: the route stays in modern, its
// clients get modern's failures, and the guard keeps trying. Once the
// disk is freed it rolls the route back by itself, audited as the
// guard's, with no operator and no restart.
func TestTheGuardRollsBackOnceTheStoreTakesWritesAgain(t *testing.T) {
	disk := smallDisk(t, 4<<20)
	legacy := backendAnswering(t, "legacy")
	dead := refusedAddr(t)
	cfg := writeFacadeConfig(t, t.TempDir(), facadeConfig{legacy: legacy.URL, modern: "http://" + dead, store: "sqlite:" + filepath.Join(disk, "strangler.db"), routes: `
  - {name: reads, match: "GET /reads/{id}", mode: modern, guard: {max_error_rate: 5%, window: 1m, min_requests: 10}}
`})
	f := startRun(t, "serve", "--config", cfg)
	route := func() (mode string, held bool) {
		var rt struct {
			Mode string         `json:"mode"`
			Held map[string]any `json:"held"`
		}
		adminGetJSON(t, f.admin, "/admin/routes/reads", &rt)
		return rt.Mode, rt.Held != nil
	}

	filler := fill(t, disk)
	testkit.Eventually(t, 20*time.Second, "/readyz says the store refuses writes", func() bool {
		_, ready := getBody(t, "http://"+f.admin+"/readyz")
		return strings.Contains(ready, "state store refusing writes since")
	})
	for range 20 {
		if code, _, _ := sendRequest("GET", "http://"+f.public+"/reads/1", "", nil); code == http.StatusOK {
			t.Fatal("GET /reads/1 with modern dead: got 200, want modern's failure")
		}
	}
	// The guard looks once a second: once it has tried, and been refused,
	// the route must still be as it was.
	f.logs.waitFor(t, "guard rollback failed", map[string]any{"route": "reads"}, 30*time.Second)
	if mode, held := route(); mode != "modern" || held {
		t.Errorf("the route with the store refusing writes: mode %s, held %v; want modern, not held (no rollback it cannot audit)", mode, held)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, "the guard rolls the route back", func() bool {
		sendRequest("GET", "http://"+f.public+"/reads/1", "", nil)
		mode, held := route()
		return mode == "fallback" && held
	})
	var audit struct {
		Entries []struct{ Actor, Action, Route string } `json:"entries"`
	}
	adminGetJSON(t, f.admin, "/admin/audit", &audit)
	rollbacks := 0
	for _, e := range audit.Entries {
		if e.Action == "rollback" && e.Actor == "guard" && e.Route == "reads" {
			rollbacks++
		}
	}
	if rollbacks != 1 {
		t.Errorf("the guard's rollbacks in the audit log: %d, want 1", rollbacks)
	}
}
