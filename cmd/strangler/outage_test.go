package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// TestGuardWithModernDead: modern refuses connections. Each guarded route
// is rolled back once, one step back, and then held, however long modern
// stays dead: the route in modern ends in fallback and the one in
// fallback ends in legacy, and their clients get 200s from then on.
func TestGuardWithModernDead(t *testing.T) {
	legacy := backendAnswering(t, "legacy")
	dead := refusedAddr(t)
	dir := t.TempDir()
	cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL, modern: "http://" + dead, routes: `
  - {name: reads, match: "GET /reads/{id}", mode: modern, guard: {max_error_rate: 5%, window: 1m, min_requests: 10}}
  - {name: lookups, match: "GET /lookups/{id}", mode: fallback, guard: {max_error_rate: 5%, window: 1m, min_requests: 10}}
`})
	f := startRun(t, "serve", "--config", cfg)

	// get asks the route once and says who answered, or the status when
	// it was not a 200.
	get := func(path string) string {
		resp, err := e2eClient.Get("http://" + f.public + path)
		if err != nil {
			return "error: " + err.Error()
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Sprint(resp.StatusCode)
		}
		return resp.Header.Get("X-Strangler-Backend")
	}
	rolledBack := func(route string) bool {
		var rt struct {
			Mode string         `json:"mode"`
			Held map[string]any `json:"held"`
		}
		adminGetJSON(t, f.admin, "/admin/routes/"+route, &rt)
		return rt.Held != nil
	}
	for _, route := range []string{"reads", "lookups"} {
		testkit.Eventually(t, 20*time.Second, route+" rolled back", func() bool {
			get("/" + route + "/1")
			return rolledBack(route)
		})
	}

	// The guard checks every second and modern keeps failing: it does
	// not act again, and every client gets its 200 from legacy.
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		for _, path := range []string{"/reads/", "/lookups/"} {
			if got := get(path + fmt.Sprint(i)); got != "legacy" {
				t.Fatalf("GET %s%d after the rollback: got %s, want a 200 from legacy", path, i, got)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	var audit struct {
		Entries []struct {
			Actor, Action, Route string
			FromMode             string `json:"from_mode"`
			ToMode               string `json:"to_mode"`
		} `json:"entries"`
	}
	adminGetJSON(t, f.admin, "/admin/audit", &audit)
	var rollbacks []string
	for _, e := range audit.Entries {
		if e.Action == "rollback" {
			rollbacks = append(rollbacks, fmt.Sprintf("%s %s: %s → %s", e.Actor, e.Route, e.FromMode, e.ToMode))
		}
	}
	want := []string{"guard lookups: fallback → legacy", "guard reads: modern → fallback"}
	if slices.Sort(rollbacks); !slices.Equal(rollbacks, want) {
		t.Errorf("rollbacks: got %q, want exactly %q", rollbacks, want)
	}
	if v := metricValue(t, f.admin, `strangler_guard_rollbacks_total{route="reads"}`); v != "1" {
		t.Errorf(`strangler_guard_rollbacks_total{route="reads"}: got %q, want 1`, v)
	}

	t.Run("routes list and report say held and why", func(t *testing.T) {
		cli := cliEnv(map[string]string{"STRANGLER_ADMIN": "http://" + f.admin, "STRANGLER_ADMIN_TOKEN": e2eAdminToken})
		out := cli(t, "routes", "list").must(t)
		if !strings.Contains(out, "fallback (held)") || !strings.Contains(out, "reads is held by the guard since") ||
			!strings.Contains(out, "modern error rate") {
			t.Errorf("routes list:\n%s\nwant reads and lookups held, with the guard's reason", out)
		}
		if out := cli(t, "routes", "report", "lookups").must(t); !strings.Contains(out, "held by the guard:") || !strings.Contains(out, "modern error rate") {
			t.Errorf("routes report lookups:\n%s\nwant the hold and its reason", out)
		}
	})
}

// flipRoute flips route on the facade at admin as an operator does: the
// route's version read first, sent as If-Match.
func flipRoute(t *testing.T, admin, route, mode, reason string) {
	t.Helper()
	var rt struct{ Version int64 }
	adminGetJSON(t, admin, "/admin/routes/"+route, &rt)
	code, body := adminDoIf(t, admin, "PATCH", "/admin/routes/"+route, fmt.Sprintf(`"%d"`, rt.Version),
		map[string]string{"mode": mode, "reason": reason})
	if code != http.StatusOK {
		t.Fatalf("flip %s to %s: got %d %s", route, mode, code, body)
	}
}

// adminGetJSON reads an admin API endpoint with the test token.
func adminGetJSON(t *testing.T, admin, path string, v any) {
	t.Helper()
	code, body := adminDo(t, admin, "GET", path, nil)
	if code != http.StatusOK {
		t.Fatalf("GET %s: got %d %s", path, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// launch starts run with args and returns once the facade listens,
// ready or not.
func launch(t *testing.T, args ...string) *running {
	t.Helper()
	return launchEnv(t, noEnv, args...)
}

// stopRun stops a facade started by launch or startRun and waits for it.
func stopRun(t *testing.T, r *running) {
	t.Helper()
	r.stop()
	if err := <-r.done; err != nil {
		t.Fatalf("the facade stopped with %v", err)
	}
	r.done <- nil // for the cleanup's receive
}

// TestStartWithTheStoreDown: replicas started while PostgreSQL is
// unreachable. One with a snapshot is ready, degraded, and serves the
// operators' flags from it; one without is not ready until it has read the
// store. Dual-write routes answer 503 until the store is back.
func TestStartWithTheStoreDown(t *testing.T) {
	proxy, dsn := testdb.NewProxy(t, testdb.Postgres(t))
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	dir := t.TempDir()
	snapshot := filepath.Join(dir, "snapshot.json")
	routes := dualWriteRoutes + `
  - {name: flag, match: "GET /flag", mode: legacy}
`
	withSnapshot := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: dsn, routes: routes, snapshot: snapshot})
	without := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: dsn, routes: routes,
		snapshot: filepath.Join(dir, "never-written.json")})

	first := startRun(t, "serve", "--config", withSnapshot)
	flipRoute(t, first.admin, "flag", "modern", "all in")
	stopRun(t, first)
	proxy.Cut()

	serving := func(r *running) string {
		resp, err := e2eClient.Get("http://" + r.public + "/flag")
		if err != nil {
			return "error: " + err.Error()
		}
		resp.Body.Close()
		return resp.Header.Get("X-Strangler-Backend")
	}
	readyz := func(r *running) (int, string) {
		return getBody(t, "http://"+r.admin+"/readyz")
	}

	a := launch(t, "serve", "--config", withSnapshot)
	waitReady(t, a.admin)
	if code, body := readyz(a); code != http.StatusOK || !strings.HasPrefix(body, "ready (degraded: store unreachable, serving snapshot from ") {
		t.Errorf("with a snapshot: /readyz got %d %q, want 200 ready (degraded: store unreachable, serving snapshot from …)", code, body)
	}
	if got := serving(a); got != "modern" {
		t.Errorf("with a snapshot: /flag served by %q, want modern, the operators' flip", got)
	}
	if code, _, _ := sendRequest("PUT", "http://"+a.public+"/items/1", `{"v":1}`, nil); code != http.StatusServiceUnavailable {
		t.Errorf("a dual write with the store down: got %d, want 503", code)
	}

	b := launch(t, "serve", "--config", without)
	// A second or two to settle: it does not become ready on its own.
	time.Sleep(2 * time.Second)
	if code, body := readyz(b); code != http.StatusServiceUnavailable || body != "waiting for the state store\n" {
		t.Errorf("without a snapshot: /readyz got %d %q, want 503 waiting for the state store", code, body)
	}

	proxy.Restore()
	testkit.Eventually(t, 20*time.Second, "the replica without a snapshot becomes ready", func() bool {
		code, body := readyz(b)
		return code == http.StatusOK && body == "ready\n"
	})
	if got := serving(b); got != "modern" {
		t.Errorf("without a snapshot, once the store is back: /flag served by %q, want modern", got)
	}
	testkit.Eventually(t, 20*time.Second, "dual writes are taken again", func() bool {
		code, _, _ := sendRequest("PUT", "http://"+a.public+"/items/2", `{"v":2}`, nil)
		return code == http.StatusOK
	})
	testkit.Eventually(t, 20*time.Second, "the replica with a snapshot is no longer degraded", func() bool {
		_, body := readyz(a)
		return body == "ready\n"
	})
}
