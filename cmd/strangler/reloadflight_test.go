package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// These tests change a facade's configuration, by a reload or a flip,
// while dual writes it acknowledged are still on their way to the
// secondary: each such write must still reach it, in its resource's order.

// reloadTo rewrites the facade's configuration file at path as c says (by
// rename, as a config management tool does) and waits until the facade
// applied it, which it tells by the number of routes: routes.
func reloadTo(t *testing.T, r *running, dir, path string, c facadeConfig, routes int) {
	t.Helper()
	renameConfig(t, dir, path, c)
	r.logs.waitFor(t, "config reloaded", map[string]any{"routes": float64(routes)}, 30*time.Second)
}

// renameConfig replaces the configuration file at path with what c says,
// by rename, as a config management tool does.
func renameConfig(t *testing.T, dir, path string, c facadeConfig) {
	t.Helper()
	next, err := os.ReadFile(writeFacadeConfig(t, dir, c))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".tmp", next, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// putItems sends PUT /items/{id} with body for each id and fails the test
// unless the primary applied each.
func putItems(t *testing.T, r *running, body string, ids ...string) {
	t.Helper()
	for _, id := range ids {
		code, out, err := sendRequest("PUT", "http://"+r.public+"/items/"+id, body, nil)
		if err != nil || code != http.StatusOK {
			t.Fatalf("PUT /items/%s: got %d %s %v, want 200", id, code, out, err)
		}
	}
}

// tryFlip sends the flip change of route as an operator does, with the
// route's version as If-Match, and returns the answer.
func tryFlip(t *testing.T, admin, route string, change map[string]any) (int, []byte) {
	t.Helper()
	var rt struct{ Version int64 }
	adminGetJSON(t, admin, "/admin/routes/"+route, &rt)
	return adminDoIf(t, admin, "PATCH", "/admin/routes/"+route, fmt.Sprintf(`"%d"`, rt.Version), change)
}

// TestPendingDualWritesOutliveAChangeOfTheirRoute: writes acknowledged
// under dual-write while the secondary is down reach it once it is back,
// whatever the operator did to their route meanwhile.
func TestPendingDualWritesOutliveAChangeOfTheirRoute(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, dsn func(string) string) {
		for _, tc := range []struct {
			name   string
			change func(t *testing.T, r *running, dir, path string, c facadeConfig)
		}{
			{"flipped to legacy", func(t *testing.T, r *running, _, _ string, _ facadeConfig) {
				flipRoute(t, r.admin, "put-item", "legacy", "stop copying")
			}},
			{"removed from the file", func(t *testing.T, r *running, dir, path string, c facadeConfig) {
				c.routes = strings.Replace(dualWriteRoutes, `  - {name: put-item, match: "PUT /items/{id}", mode: dual-write}`+"\n", "", 1)
				reloadTo(t, r, dir, path, c, 4)
			}},
			{"renamed in the file", func(t *testing.T, r *running, dir, path string, c facadeConfig) {
				c.routes = strings.Replace(dualWriteRoutes, "name: put-item,", "name: put-item-v2,", 1)
				reloadTo(t, r, dir, path, c, 5)
			}},
			{"removed, then added again", func(t *testing.T, r *running, dir, path string, c facadeConfig) {
				c.routes = strings.Replace(dualWriteRoutes, `  - {name: put-item, match: "PUT /items/{id}", mode: dual-write}`+"\n", "", 1)
				reloadTo(t, r, dir, path, c, 4)
				c.routes = c.routes + `  - {name: put-item, match: "PUT /items/{id}", mode: dual-write}` + "\n"
				reloadTo(t, r, dir, path, c, 5)
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				legacy := newRecordingBackend(t, "legacy", false, false)
				modern := newRecordingBackend(t, "modern", false, false)
				dir := t.TempDir()
				c := facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: dsn(dir)}
				path := writeFacadeConfig(t, dir, c)
				r := startRun(t, "serve", "--config", path)
				st := openStateStore(t, c.store)

				modern.stop()
				putItems(t, r, `{"v":1}`, "1", "2", "3")
				tc.change(t, r, dir, path, c)
				modern.start()
				waitDrained(t, st, 60*time.Second)
				sameRecords(t, legacy, modern)
			})
		}
	})
}

// eachStore runs f as a subtest on SQLite and on PostgreSQL, where dsn
// gives each call a store of its own (onBothStores shares one database
// among a test's facades, which then deliver each other's writes).
func eachStore(t *testing.T, f func(t *testing.T, dsn func(dir string) string)) {
	t.Run("on SQLite", func(t *testing.T) {
		f(t, func(dir string) string { return "sqlite:" + filepath.Join(dir, "strangler.db") })
	})
	t.Run("on PostgreSQL", func(t *testing.T) {
		f(t, func(string) string { return testdb.Postgres(t) })
	})
}

// TestPendingDualWritesGoWhereTheSecondaryNowIs: writes pending for a
// secondary whose URL a reload changed go to the new URL, as new requests
// do. The old address refuses every write to the end: a delivery already
// on its way there when the reload went through may still arrive after it
// (a loaded machine delayed one past the reload, and an old address that
// had recovered applied it), so the writes' reaching the new address, and
// all of them, is what shows they were sent there.
func TestPendingDualWritesGoWhereTheSecondaryNowIs(t *testing.T) {
	t.Parallel()
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", false, false)
	moved := newRecordingBackend(t, "modern-moved", false, false)
	dir := t.TempDir()
	c := facadeConfig{legacy: legacy.URL(), modern: modern.URL()}
	path := writeFacadeConfig(t, dir, c)
	r := startRun(t, "serve", "--config", path)
	st := openStateStore(t, "sqlite:"+filepath.Join(dir, "strangler.db"))

	modern.fault.Store(int32(fault503))
	putItems(t, r, `{"v":1}`, "1", "2", "3")
	c.modern = moved.URL()
	reloadTo(t, r, dir, path, c, 5)
	waitDrained(t, st, 60*time.Second)
	sameRecords(t, legacy, moved)
}

// TestAChangeThatWouldOvertakePendingWritesIsRefused: PUT v1 under
// primary legacy is on its way to modern. Had a reload made modern the
// primary, or a flip sent the route's writes to modern, PUT v2 of the same
// item would reach modern first and v1, delivered after, would undo it
// there: modern ended with v1, legacy with v2, both writes acknowledged.
// Such a change is refused while the route's writes are pending; once they
// are delivered it goes through.
func TestAChangeThatWouldOvertakePendingWritesIsRefused(t *testing.T) {
	t.Parallel()
	eachStore(t, func(t *testing.T, dsn func(string) string) {
		for _, tc := range []struct {
			name string
			// change makes the change and reports whether it was refused.
			change func(t *testing.T, r *running, dir, path string, c facadeConfig) bool
		}{
			{"a reload makes modern the primary", func(t *testing.T, r *running, dir, path string, c facadeConfig) bool {
				c.routes = strings.Replace(dualWriteRoutes, `"PUT /items/{id}", mode: dual-write}`, `"PUT /items/{id}", mode: dual-write, primary: modern}`, 1)
				return reloadRefused(t, r, dir, path, c, path+": routes[0] (put-item) would send writes straight to modern, ahead of 1 dual write owed there")
			}},
			{"a reload renames it and makes modern the primary", func(t *testing.T, r *running, dir, path string, c facadeConfig) bool {
				// The journal has v1 under put-item, the file no route of
				// that name: the route it still is, by its match, would
				// overtake it under its new name (before, the reload went
				// through).
				c.routes = strings.Replace(dualWriteRoutes, `{name: put-item, match: "PUT /items/{id}", mode: dual-write}`,
					`{name: put-item-v2, match: "PUT /items/{item}", mode: dual-write, primary: modern}`, 1)
				return reloadRefused(t, r, dir, path, c, path+": routes[0] (put-item-v2) would send writes straight to modern")
			}},
			{"a reload renames it, makes modern the primary and gives its name to another route", func(t *testing.T, r *running, dir, path string, c facadeConfig) bool {
				// put-item is now another route's name: the route of v1's
				// match is not paired with it by name, nor by match as its
				// old name is still there (before, the reload went through).
				c.routes = strings.Replace(dualWriteRoutes, `{name: put-item, match: "PUT /items/{id}", mode: dual-write}`,
					`{name: put-item-v2, match: "PUT /items/{id}", mode: dual-write, primary: modern}`+"\n"+
						`  - {name: put-item, match: "PUT /things/{id}", mode: dual-write}`, 1)
				return reloadRefused(t, r, dir, path, c, path+": routes[0] (put-item-v2) would send writes straight to modern, ahead of 1 dual write owed there")
			}},
			{"a reload removes it and makes modern the default backend", func(t *testing.T, r *running, dir, path string, c facadeConfig) bool {
				// PUT /items/{id} matches no route then, and goes to the
				// default backend (before, the reload went through).
				c.routes = strings.Replace(dualWriteRoutes, `  - {name: put-item, match: "PUT /items/{id}", mode: dual-write}`+"\n", "", 1)
				c.defaultBackend = "modern"
				return reloadRefused(t, r, dir, path, c, path+": route put-item, which the file no longer has, has 1 dual write owed to modern, which the default backend (default: modern) would send its requests straight to")
			}},
			{"a flip to modern", func(t *testing.T, r *running, _, _ string, _ facadeConfig) bool {
				code, body := tryFlip(t, r.admin, "put-item", map[string]any{"mode": "modern", "reason": "cut over", "force": true})
				if code != http.StatusOK && code != http.StatusConflict {
					t.Fatalf("the flip: got %d %s, want 200 or 409", code, body)
				}
				return code == http.StatusConflict
			}},
			{"a flip to fallback", func(t *testing.T, r *running, _, _ string, _ facadeConfig) bool {
				code, body := tryFlip(t, r.admin, "put-item", map[string]any{"mode": "fallback", "reason": "cut over", "force": true})
				if code != http.StatusOK && code != http.StatusConflict {
					t.Fatalf("the flip: got %d %s, want 200 or 409", code, body)
				}
				return code == http.StatusConflict
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				legacy, modern, released := backendsHoldingDeliveries(t)
				dir := t.TempDir()
				c := facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: dsn(dir), timeout: 2 * time.Second}
				path := writeFacadeConfig(t, dir, c)
				r := startRun(t, "serve", "--config", path)
				st := openStateStore(t, c.store)

				putItems(t, r, `{"v":1}`, "1")
				refused := tc.change(t, r, dir, path, c)
				putV2Last(t, r, st, modern, released)
				if !refused {
					t.Errorf("the change went through while a write of the route was on its way to modern, want it refused")
				}
				if legacyItems, _ := legacy.snapshot(); legacyItems["1"] != `{"v":2}` {
					t.Errorf("legacy holds item 1 as %s, want v2", legacyItems["1"])
				}
			})
		}
	})
}

// TestAFlipStormUnderWriteLoadLosesNoWrite: 100 flips of a read route
// while dual writes stream in: every write the client saw succeed reaches
// the secondary, and the facade holds no more goroutines afterwards than
// after a quiet spell of the same writes. Not parallel: it counts the
// process's goroutines.
func TestAFlipStormUnderWriteLoadLosesNoWrite(t *testing.T) {
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", false, false)
	dir := t.TempDir()
	c := facadeConfig{legacy: legacy.URL(), modern: modern.URL()}
	path := writeFacadeConfig(t, dir, c)
	r := startRun(t, "serve", "--config", path)
	st := openStateStore(t, "sqlite:"+filepath.Join(dir, "strangler.db"))

	// writes sends PUTs of items 0 to 199 over 8 clients, round after
	// round until stop is closed (at least one round), and returns how
	// many it sent and how many the primary did not apply.
	writes := func(round string, stop <-chan struct{}) (sent, failed int) {
		var mu sync.Mutex
		for n := 0; ; n++ {
			runParallel(200, 8, func(i int) {
				code, _, err := sendRequest("PUT", "http://"+r.public+"/items/"+strconv.Itoa(i), `{"round":"`+round+strconv.Itoa(n)+`"}`, nil)
				mu.Lock()
				defer mu.Unlock()
				if sent++; err != nil || code != http.StatusOK {
					failed++
				}
			})
			select {
			case <-stop:
				return sent, failed
			default:
			}
		}
	}
	quietDone := make(chan struct{})
	close(quietDone)
	writes("quiet", quietDone)
	waitDrained(t, st, 60*time.Second)
	quiet := runtime.NumGoroutine()

	stop := make(chan struct{})
	type result struct{ sent, failed int }
	wrote := make(chan result, 1)
	go func() {
		sent, failed := writes("storm", stop)
		wrote <- result{sent, failed}
	}()
	flipped := 0
	for i := range 100 {
		mode := []string{"shadow", "legacy"}[i%2]
		if code, body := tryFlip(t, r.admin, "get-item", map[string]any{"mode": mode, "reason": "storm", "force": true}); code == http.StatusOK {
			flipped++
		} else {
			t.Errorf("flip %d: got %d %s, want 200", i, code, body)
		}
	}
	close(stop)
	w := <-wrote
	t.Logf("%d flips while %d writes went through (%d not applied by the primary)", flipped, w.sent, w.failed)
	if w.failed > 0 {
		t.Errorf("%d of %d writes failed during the flips, want none", w.failed, w.sent)
	}
	waitDrained(t, st, 60*time.Second)
	sameRecords(t, legacy, modern)
	testkit.Eventually(t, 30*time.Second, "the goroutines settle back to the quiet spell's", func() bool {
		return runtime.NumGoroutine() <= quiet+10
	})
	t.Logf("goroutines: %d after the quiet writes, %d after the storm", quiet, runtime.NumGoroutine())
}

// TestARemovedRoutesOwedWritesAreToldAndStayDeliverable: a write of
// put-item is dead (modern was down for every attempt) when a reload
// removes the route, whose requests then go to legacy, the primary: the
// reload goes through, and says which route still has how many writes
// owed where (before, it said nothing). The write stays listed under its
// route, and an operator's retry delivers it once modern is back.
func TestARemovedRoutesOwedWritesAreToldAndStayDeliverable(t *testing.T) {
	t.Parallel()
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", false, false)
	dir := t.TempDir()
	c := facadeConfig{legacy: legacy.URL(), modern: modern.URL(), maxAttempts: 1}
	path := writeFacadeConfig(t, dir, c)
	r := startRun(t, "serve", "--config", path)

	modern.stop()
	putItems(t, r, `{"v":1}`, "1")
	type listed struct {
		Repairs []struct{ ID, Route, State string }
	}
	var dead listed
	testkit.Eventually(t, 30*time.Second, "the write is dead", func() bool {
		adminGetJSON(t, r.admin, "/admin/repairs?route=put-item", &dead)
		return len(dead.Repairs) == 1 && dead.Repairs[0].State == "dead"
	})

	c.routes = strings.Replace(dualWriteRoutes, `  - {name: put-item, match: "PUT /items/{id}", mode: dual-write}`+"\n", "", 1)
	reloadTo(t, r, dir, path, c, 4)
	r.logs.waitFor(t, "the configuration no longer has a route whose dual writes are still owed to its secondary; they are delivered from the journal (strangler repairs list --route NAME)",
		map[string]any{"route": "put-item", "owed": float64(1), "secondary": "modern"}, 30*time.Second)

	var after listed
	adminGetJSON(t, r.admin, "/admin/repairs?route=put-item", &after)
	if len(after.Repairs) != 1 || after.Repairs[0].ID != dead.Repairs[0].ID {
		t.Fatalf("after the reload the queue lists %+v under put-item, want the dead write %s", after.Repairs, dead.Repairs[0].ID)
	}
	modern.start()
	if code, body := adminDo(t, r.admin, "POST", "/admin/repairs/"+dead.Repairs[0].ID+"/retry", map[string]string{"reason": "modern is back"}); code != http.StatusOK {
		t.Fatalf("retry of the removed route's write: got %d %s, want 200", code, body)
	}
	waitDrained(t, openStateStore(t, "sqlite:"+filepath.Join(dir, "strangler.db")), 60*time.Second)
	if items, _ := modern.snapshot(); items["1"] != `{"v":1}` {
		t.Errorf("modern holds item 1 as %q after the retry, want v1", items["1"])
	}
}

// reloadRefused renames c over path, waits for the facade to refuse the
// reload, and checks that the refusal says want; it reports true, for
// the cases that return whether their change was refused.
func reloadRefused(t *testing.T, r *running, dir, path string, c facadeConfig, want string) bool {
	t.Helper()
	renameConfig(t, dir, path, c)
	line := r.logs.waitFor(t, "config reload refused; the previous configuration keeps serving", nil, 30*time.Second)
	if msg, _ := line["error"].(string); !strings.Contains(msg, want) {
		t.Errorf("the refusal says %q, want %q", msg, want)
	}
	return true
}
