package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// TestReplicasFollowFlips runs three facade processes sharing one
// PostgreSQL store, as replicas behind a load balancer: a flip made on any
// of them is served by all three, and a replica that loses the store keeps
// serving its last known flags until it is back, then resyncs.
//
// How fast a flip arrives is not asserted here: a loaded machine makes any
// wall-clock bound flaky. That a replica applies a flip on its
// notification, not at its 5 s re-read, is control's
// TestReplicasFollowFlipsOnTheNotification; the "within a second" figure is
// measured by make bench (bench/proxy, propagation).
func TestReplicasFollowFlips(t *testing.T) {
	// Most of it waits on the replicas' store timers: with the other
	// waiting tests. Its schema, proxy, ports and files are its own.
	t.Parallel()
	dsn := testdb.Postgres(t)
	// The third replica reaches PostgreSQL through a proxy the test can cut.
	proxy, proxied := testdb.NewProxy(t, dsn)
	legacy := backendAnswering(t, "legacy")
	modern := backendAnswering(t, "modern")
	routes := `
  - {name: flag, match: "GET /flag", mode: legacy}
`
	dir := t.TempDir()
	direct := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL, modern: modern.URL, store: dsn, routes: routes})
	viaProxy := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL, modern: modern.URL, store: proxied, routes: routes})
	replicas := startProcesses(t,
		[]string{"serve", "--config", direct}, []string{"serve", "--config", direct}, []string{"serve", "--config", viaProxy})
	a, c := replicas[0], replicas[2]

	// serving asks a replica which backend serves the route now.
	serving := func(p *process) string {
		resp, err := e2eClient.Get("http://" + p.public + "/flag")
		if err != nil {
			return "error: " + err.Error()
		}
		resp.Body.Close()
		return resp.Header.Get("X-Strangler-Backend")
	}
	flip := func(p *process, mode string) {
		t.Helper()
		var route struct{ Version int64 }
		if code, body := adminDo(t, p.admin, "GET", "/admin/routes/flag", nil); code != http.StatusOK || json.Unmarshal(body, &route) != nil {
			t.Fatalf("GET /admin/routes/flag: got %d %s, want the route", code, body)
		}
		code, body := adminDoIf(t, p.admin, "PATCH", "/admin/routes/flag", fmt.Sprintf(`"%d"`, route.Version),
			map[string]string{"mode": mode, "reason": "replica test"})
		if code != http.StatusOK {
			t.Fatalf("PATCH /admin/routes/flag to %s: got %d %s, want 200", mode, code, body)
		}
	}
	// follow waits until each of ps serves mode, and returns how long each
	// took from start, or -1 for one that did not within timeout.
	follow := func(ps []*process, mode string, start time.Time, timeout time.Duration) []time.Duration {
		took := make([]time.Duration, len(ps))
		var wg sync.WaitGroup
		for i, p := range ps {
			wg.Go(func() {
				for wait := time.Millisecond; serving(p) != mode; wait = min(2*wait, 20*time.Millisecond) {
					if time.Since(start) > timeout {
						took[i] = -1
						return
					}
					time.Sleep(wait)
				}
				took[i] = time.Since(start)
			})
		}
		wg.Wait()
		return took
	}

	t.Run("a flip on any replica is served by all three", func(t *testing.T) {
		// One flip on each, ending on modern: not the file's mode, which
		// the next subtest tells a replica's last known flags from.
		mode := "legacy"
		for i := range len(replicas) {
			mode = map[string]string{"legacy": "modern", "modern": "legacy"}[mode]
			start := time.Now()
			flip(replicas[i%3], mode)
			// Generous: the 5 s re-read would serve it well within.
			took := follow(replicas[:], mode, start, 30*time.Second)
			if slices.Contains(took, -1) {
				t.Fatalf("flip %d to %s on replica %d: not served by every replica after 30 s: %v", i+1, mode, i%3+1, took)
			}
			t.Logf("flip %d to %s on replica %d: served by the three after %v", i+1, mode, i%3+1, took)
		}
	})

	t.Run("a replica without the store serves its last known flags, then resyncs", func(t *testing.T) {
		before, other := "modern", "legacy"
		if got := serving(c); got != before {
			t.Fatalf("the replica to cut off serves %q, want %q, the last flip's", got, before)
		}
		proxy.Cut()
		took := testkit.Eventually(t, 30*time.Second, "the cut-off replica says degraded", func() bool {
			_, body := getBody(t, "http://"+c.admin+"/readyz")
			return strings.Contains(body, "degraded")
		})
		t.Logf("degraded %v after the cut", took.Round(time.Millisecond))
		if v := metricValue(t, c.admin, "strangler_store_up"); v != "0" {
			t.Errorf("strangler_store_up of the cut-off replica: got %q, want 0", v)
		}
		if code, _ := getBody(t, "http://"+c.admin+"/readyz"); code != http.StatusOK {
			t.Errorf("/readyz of the cut-off replica: got %d, want 200 (ready, degraded)", code)
		}

		start := time.Now()
		flip(a, other)
		// The flip is out before the cut-off replica is seen to keep its
		// last mode.
		if took := follow(replicas[:2], other, start, 30*time.Second); slices.Contains(took, -1) {
			t.Fatalf("the replicas with the store did not follow the flip within 30 s: %v", took)
		}
		for deadline := time.Now().Add(1500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if got := serving(c); got != before {
				t.Fatalf("the cut-off replica: got %q, want %q, its last known mode", got, before)
			}
		}

		proxy.Restore()
		start = time.Now()
		// Generous: it reconnects within its 5 s backoff and re-reads at
		// once, or at its next 5 s re-read.
		took = follow([]*process{c}, other, start, 30*time.Second)[0]
		if took < 0 {
			t.Fatalf("the replica did not resync to %s within 30 s of the store coming back", other)
		}
		t.Logf("resynced %v after the store came back", took.Round(time.Millisecond))
		testkit.Eventually(t, 30*time.Second, "the replica says ready again, not degraded", func() bool {
			_, body := getBody(t, "http://"+c.admin+"/readyz")
			return body == "ready\n" && metricValue(t, c.admin, "strangler_store_up") == "1"
		})
	})
}
