package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// readyz returns the admin listener's /readyz answer, "" if none came.
func readyz(t *testing.T, admin string) (int, string) {
	t.Helper()
	resp, err := e2eClient.Get("http://" + admin + "/readyz")
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// TestAPostgreSQLRestartUnderLoad restarts the store's server (stopped at
// once, as a crash would, then started again) under 50 dual writes a
// second and steady fallback reads: the reads never fail, dual writes
// answer 503 while it is away and nothing acknowledged is lost, a flip
// is refused with a JSON error meanwhile, and once it is back the
// facade says so within seconds: /readyz ready and strangler_store_up 1
// again. (Every write's outcome used to wait behind the ones kept in
// memory during the outage, so a steady load kept them as many as they
// were: in one such run, with about 250 kept, /readyz said the store
// refused writes for 88 s after it took them again. How many are kept
// depends on the moment the server goes; dualwrite's
// TestOutcomesOfOtherResourcesPassTheHeldOnes pins the rule.)
func TestAPostgreSQLRestartUnderLoad(t *testing.T) {
	cluster := testdb.NewCluster(t)
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	routes := dualWriteRoutes + `
  - {name: flag, match: "GET /flag", mode: legacy}
`
	cfg := writeFacadeConfig(t, t.TempDir(), facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: cluster.DSN(), routes: routes, timeout: 10 * time.Second})
	a := startRun(t, "serve", "--config", cfg)
	if code, _, err := sendRequest("PUT", "http://"+a.public+"/items/read-me", `{"read":"me"}`, nil); err != nil || code != http.StatusOK {
		t.Fatalf("the first write: got %d %v", code, err)
	}
	flipRoute(t, a.admin, "get-item", "fallback", "reads from modern")

	var reads, failedReads atomic.Int64
	stopReads := make(chan struct{})
	var readers sync.WaitGroup
	for _, path := range []string{"/items/read-me", "/items/missing"} {
		readers.Go(func() {
			for {
				select {
				case <-stopReads:
					return
				case <-time.After(20 * time.Millisecond):
				}
				code, _, err := sendRequest("GET", "http://"+a.public+path, "", nil)
				reads.Add(1)
				if want := map[string]int{"/items/read-me": 200, "/items/missing": 404}[path]; err != nil || code != want {
					failedReads.Add(1)
				}
			}
		})
	}
	stopWrites := make(chan struct{})
	loadDone := make(chan []pacedWrite, 1)
	go func() { loadDone <- pacedLoad([]*running{a}, 20*time.Millisecond, stopWrites) }()

	time.Sleep(2 * time.Second) // the load runs on the healthy store
	stopped := time.Now()
	cluster.StopPrimary()
	testkit.Eventually(t, 15*time.Second, "/readyz says the store refuses writes", func() bool {
		_, body := readyz(t, a.admin)
		return strings.Contains(body, "refusing writes")
	})
	if up := metricValue(t, a.admin, "strangler_store_up"); up != "0" {
		t.Errorf("strangler_store_up with the store away: %q, want 0", up)
	}
	code, body := adminDoIf(t, a.admin, "PATCH", "/admin/routes/flag", `"0"`, map[string]string{"mode": "modern", "reason": "during the outage"})
	var refusal struct{ Error string }
	if code != http.StatusServiceUnavailable || json.Unmarshal(body, &refusal) != nil || refusal.Error == "" {
		t.Errorf("a flip with the store away: got %d %s, want 503 with a JSON error", code, body)
	}
	time.Sleep(3 * time.Second)
	restarting := time.Now()
	cluster.RestartPrimary()
	restarted := time.Now()

	took := testkit.Eventually(t, 60*time.Second, "/readyz ready and strangler_store_up 1 again", func() bool {
		code, body := readyz(t, a.admin)
		return code == http.StatusOK && body == "ready" && metricValue(t, a.admin, "strangler_store_up") == "1"
	})
	close(stopWrites)
	writes := <-loadDone
	close(stopReads)
	readers.Wait()
	if took > 30*time.Second {
		t.Errorf("/readyz ready again %v after the store was, want within 30 s", took.Round(time.Millisecond))
	}
	flipRoute(t, a.admin, "flag", "modern", "after the outage")

	byStatus := map[int]int{}
	for _, w := range writes {
		byStatus[w.status]++
		if w.status != http.StatusOK && w.status != http.StatusServiceUnavailable {
			t.Errorf("write w%d: got %d, want 200, or 503 while the store is away", w.n, w.status)
		}
	}
	if n := failedReads.Load(); n > 0 {
		t.Errorf("reads: %d of %d failed, want none", n, reads.Load())
	}
	waitDrained(t, openStateStore(t, cluster.DSN()), 60*time.Second)
	onModern, _ := modern.snapshot()
	missing := 0
	for _, w := range writes {
		if w.status == http.StatusOK && onModern[fmt.Sprintf("w%d", w.n)] == "" {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d acknowledged writes never reached the secondary", missing)
	}
	t.Logf("store away %v (its restart took %v); writes by status %v; ready again %v after the restart; %d reads, %d failed",
		restarting.Sub(stopped).Round(time.Millisecond), restarted.Sub(restarting).Round(time.Millisecond), byStatus,
		took.Round(time.Millisecond), reads.Load(), failedReads.Load())
}
