package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"strangler/internal/testdb"
	"strangler/internal/testkit"
	"strangler/patients"
)

// These tests run the dual-write path end to end: real facade processes
// (the binary, or run in this process), a real state store (SQLite, and
// PostgreSQL where the property depends on it), and backends that are real
// HTTP servers storing what they receive.

// e2eAdminToken is the bearer token the test configurations give the admin
// API (named "test" in the audit log).
// TestDualWriteSecondaryDownFor1000Writes: every write succeeds for the
// client while the secondary is down, all of them wait in the queue, and
// once it is back the queue drains and both sides hold the same records.
func TestDualWriteSecondaryDownFor1000Writes(t *testing.T) {
	onBothStores(t, func(t *testing.T, dsn func(string) string) {
		const writes = 1000
		legacy := newRecordingBackend(t, "legacy", false, false)
		modern := newRecordingBackend(t, "modern", true, true)
		modern.stop()
		dir := t.TempDir()
		p := startProcess(t, "serve", "--config", writeFacadeConfig(t, dir, facadeConfig{
			legacy: legacy.URL(), modern: modern.URL(), store: dsn(dir),
		}))
		st := openStateStore(t, dsn(dir))

		start := time.Now()
		var failed atomic.Int64
		runParallel(writes, 8, func(i int) {
			// 250 items written four times each, and entries appended to
			// 10 accounts: ordered per resource, unordered across them.
			var code int
			var err error
			if i%5 == 4 {
				code, _, err = sendRequest("POST", fmt.Sprintf("http://%s/accounts/%d/entries", p.public, i%10), fmt.Sprintf(`{"w":%d}`, i), nil)
			} else {
				code, _, err = sendRequest("PUT", fmt.Sprintf("http://%s/items/%d", p.public, i%250), fmt.Sprintf(`{"v":%d}`, i), nil)
			}
			if err != nil || code < 200 || code > 299 {
				if failed.Add(1) <= 3 {
					t.Errorf("write %d: got %d %v, want 2xx from the primary", i, code, err)
				}
			}
		})
		t.Logf("%d writes with the secondary down in %v", writes, time.Since(start).Round(time.Millisecond))
		if n := failed.Load(); n > 0 {
			t.Fatalf("%d of %d writes failed for the client, want none", n, writes)
		}
		testkit.Eventually(t, 10*time.Second, "strangler_repair_queue_depth{state=\"pending\"} = 1000", func() bool {
			return metricValue(t, p.admin, `strangler_repair_queue_depth{state="pending"}`) == strconv.Itoa(writes)
		})
		if d := queueDepth(t, st); d["pending"] != writes {
			t.Fatalf("pending writes in the store: got %d, want %d", d["pending"], writes)
		}

		modern.start()
		took := waitDrained(t, st, 60*time.Second)
		t.Logf("queue of %d drained in %v once the secondary was back", writes, took.Round(time.Millisecond))
		sameRecords(t, legacy, modern)
		_, applied := modern.counts()
		for key, n := range applied {
			if n != 1 {
				t.Errorf("Idempotency-Key %q applied %d times by the secondary, want 1", key, n)
			}
		}
	})
}

// TestDualWriteBacklogOfOneResource: writes to one resource wait for
// each other, so a backlog of them (built while the secondary was down,
// or behind a delivery a crashed replica had leased) goes one at a time;
// it must still go as fast as the secondary answers, not one per poll.
func TestDualWriteBacklogOfOneResource(t *testing.T) {
	const writes = 300
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	modern.stop()
	dir := t.TempDir()
	p := startProcess(t, "serve", "--config", writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL()}))
	st := openStateStore(t, "sqlite:"+filepath.Join(dir, "strangler.db"))
	runParallel(writes, 4, func(i int) {
		if code, _, err := sendRequest("POST", "http://"+p.public+"/accounts/1/entries", fmt.Sprintf(`{"w":%d}`, i), nil); err != nil || code != http.StatusCreated {
			t.Errorf("write %d: got %d %v, want 201", i, code, err)
		}
	})
	modern.start()
	took := waitDrained(t, st, 30*time.Second)
	t.Logf("%d writes to one resource drained in %v once the secondary was back", writes, took.Round(time.Millisecond))
	sameRecords(t, legacy, modern)
}

// TestDualWriteSameIdempotencyKeyThreeTimes: a client sending one write
// three times at once with the same Idempotency-Key (a retry racing the
// original) leaves one record on each backend, on the reference API as
// the primary.
//
// Whose key is whose: the client's Idempotency-Key passes through to the
// primary untouched. The facade journals the write once under the key: a
// try while the first is with the primary answers 409, a try after it
// reaches the primary, which replays its answer, and is not journaled
// again (TestIdempotencyKeyMakesRetriesOneWrite has the details). The
// secondary gets the one journal entry, with a key stable across the
// repair worker's retries.
func TestDualWriteSameIdempotencyKeyThreeTimes(t *testing.T) {
	onBothStores(t, func(t *testing.T, dsn func(string) string) {
		legacyStore, modernStore := patients.NewMemoryStore(0, 1000), patients.NewMemoryStore(0, 1)
		legacy := httptestServer(t, patients.NewAPI(patients.Backend{
			Patients: legacyStore, Photos: legacyStore, Idempotency: patients.NewMemoryIdempotency(),
		}, slog.New(slog.DiscardHandler)).ServeHTTP)
		modern := httptestServer(t, patients.NewAPI(patients.Backend{
			Patients: modernStore, Photos: modernStore, Idempotency: patients.NewMemoryIdempotency(), KeepPrimaryID: true,
		}, slog.New(slog.DiscardHandler)).ServeHTTP)
		dir := t.TempDir()
		p := startProcess(t, "serve", "--config", writeFacadeConfig(t, dir, facadeConfig{
			legacy: legacy.URL, modern: modern.URL, store: dsn(dir), routes: `
  - {name: create-patient, match: "POST /patients", mode: dual-write, id_field: id, primary_idempotent: true}
  - {name: update-patient, match: "PUT /patients/{id}", mode: dual-write}
`,
		}))
		st := openStateStore(t, dsn(dir))

		const body = `{"first_name":"Ada","last_name":"Lovelace","birth_date":"1815-12-10"}`
		var wg sync.WaitGroup
		var mu sync.Mutex
		var created []string
		for i := range 3 {
			wg.Go(func() {
				code, got, err := sendRequest("POST", "http://"+p.public+"/patients", body, map[string]string{"Idempotency-Key": "client-key-1"})
				switch {
				case err == nil && code == http.StatusCreated:
					mu.Lock()
					created = append(created, got)
					mu.Unlock()
				case err == nil && code == http.StatusConflict && strings.Contains(got, "is in progress"):
				default:
					t.Errorf("request %d: got %d %s %v, want 201, or 409 while another is with the primary", i, code, got, err)
				}
			})
		}
		wg.Wait()
		if len(created) == 0 || slices.ContainsFunc(created, func(a string) bool { return a != created[0] }) {
			t.Errorf("the 201 answers are %q, want at least one, all the primary's one answer", created)
		}
		// A later write shows whether the route's queue still flows.
		if code, _, err := sendRequest("POST", "http://"+p.public+"/patients", `{"first_name":"Grace","last_name":"Hopper","birth_date":"1906-12-09"}`, nil); err != nil || code != http.StatusCreated {
			t.Fatalf("a later create: got %d %v, want 201", code, err)
		}
		testkit.Eventually(t, 20*time.Second, "the queue settles", func() bool {
			d := queueDepth(t, st)
			return d["pending"]+d["sent"] == 0
		})

		ctx := context.Background()
		onLegacy, _ := legacyStore.List(ctx, 0, 100)
		onModern, _ := modernStore.List(ctx, 0, 100)
		if len(onLegacy) != 2 || len(onModern) != 2 {
			t.Errorf("got %d patients on the primary and %d on the secondary, want 2 on each (Ada once, Grace once)", len(onLegacy), len(onModern))
		}
		for i := range min(len(onLegacy), len(onModern)) {
			if onLegacy[i].ID != onModern[i].ID || onLegacy[i].LastName != onModern[i].LastName {
				t.Errorf("patient %d: got %+v on the secondary, want %+v as on the primary", i, onModern[i], onLegacy[i])
			}
		}
		if d := queueDepth(t, st); d["dead"] != 0 {
			code, list := adminDo(t, p.admin, "GET", "/admin/repairs?state=dead", nil)
			t.Errorf("dead-lettered writes: got %d, want 0: the client's retries reached the secondary as distinct writes; %d %s", d["dead"], code, list)
		}
	})
}

// TestDualWriteOrderPerResource: writes to one resource reach the
// secondary in the order the primary applied them, whatever the secondary
// does meanwhile.
func TestDualWriteOrderPerResource(t *testing.T) {
	t.Run("PUT v1 then v2 while the secondary flaps ends at v2", func(t *testing.T) {
		legacy := newRecordingBackend(t, "legacy", false, false)
		modern := newRecordingBackend(t, "modern", true, true)
		dir := t.TempDir()
		p := startProcess(t, "serve", "--config", writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL()}))
		st := openStateStore(t, "sqlite:"+filepath.Join(dir, "strangler.db"))

		stopFlapping := modern.flap()
		const items, versions = 40, 5
		runParallel(items, 8, func(i int) {
			for v := 1; v <= versions; v++ {
				code, _, err := sendRequest("PUT", fmt.Sprintf("http://%s/items/o%d", p.public, i), fmt.Sprintf(`{"v":%d}`, v), nil)
				if err != nil || code != http.StatusOK {
					t.Errorf("PUT item o%d v%d: got %d %v, want 200", i, v, code, err)
				}
			}
		})
		time.Sleep(500 * time.Millisecond)
		stopFlapping()
		waitDrained(t, st, 30*time.Second)
		items_, _ := modern.snapshot()
		for i := range items {
			id := fmt.Sprintf("o%d", i)
			if got, want := items_[id], fmt.Sprintf(`{"v":%d}`, versions); got != want {
				t.Errorf("item %s on the secondary: got %q, want %q", id, got, want)
			}
		}
		sameRecords(t, legacy, modern)
	})

	// A create still waiting for the secondary, then the DELETE of what it
	// created: the secondary must end without it, whichever order the two
	// were answered in by it.
	deleteAfterCreate := func(t *testing.T, create func(p *process, i int) (path string)) {
		legacy := newRecordingBackend(t, "legacy", false, false)
		modern := newRecordingBackend(t, "modern", true, true)
		dir := t.TempDir()
		p := startProcess(t, "serve", "--config", writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL()}))
		st := openStateStore(t, "sqlite:"+filepath.Join(dir, "strangler.db"))

		// The creates reach the primary while the secondary is down: they
		// wait in the queue, backing off.
		modern.stop()
		const n = 10
		var paths []string
		for i := range n {
			paths = append(paths, create(p, i))
		}
		time.Sleep(time.Second)
		// The secondary is back; the client deletes what it created.
		modern.start()
		for _, path := range paths {
			if code, _, err := sendRequest("DELETE", "http://"+p.public+path, "", nil); err != nil || code != http.StatusNoContent {
				t.Errorf("DELETE %s: got %d %v, want 204", path, code, err)
			}
		}
		testkit.Eventually(t, 20*time.Second, "the queue settles", func() bool {
			d := queueDepth(t, st)
			return d["pending"]+d["sent"] == 0
		})
		onModern, _ := modern.snapshot()
		for id, v := range onModern {
			t.Errorf("item %s is on the secondary (%s) after its DELETE, want it absent as on the primary", id, v)
		}
		if d := queueDepth(t, st); d["dead"] != 0 {
			t.Errorf("dead-lettered writes: got %d, want 0", d["dead"])
		}
	}
	t.Run("a DELETE after a failed create does not resurrect the resource", func(t *testing.T) {
		deleteAfterCreate(t, func(p *process, i int) string {
			path := fmt.Sprintf("/items/z%d", i)
			if code, _, err := sendRequest("PUT", "http://"+p.public+path, `{"v":"created by PUT"}`, nil); err != nil || code != http.StatusOK {
				t.Fatalf("PUT %s: got %d %v, want 200", path, code, err)
			}
			return path
		})
	})
	t.Run("a DELETE after a failed POST create does not resurrect the resource", func(t *testing.T) {
		// A POST's request path is its collection (/items), the DELETE's
		// the item (/items/7): the create moves to the resource its answer
		// names, so the two are ordered.
		deleteAfterCreate(t, func(p *process, i int) string {
			code, body, err := sendRequest("POST", "http://"+p.public+"/items", `{"v":"created by POST"}`, nil)
			if err != nil || code != http.StatusCreated {
				t.Fatalf("POST /items: got %d %v, want 201", code, err)
			}
			var c struct{ ID string }
			json.Unmarshal([]byte(body), &c)
			return "/items/" + c.ID
		})
	})
}

// TestDualWritePermanentRefusal: a write the secondary refuses with 400
// is dead-lettered for an operator, and writes to other resources keep
// reaching the secondary.
func TestDualWritePermanentRefusal(t *testing.T) {
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	modern.mu.Lock()
	modern.refuse = func(r *http.Request) bool { return r.URL.Path == "/items/poison" }
	modern.mu.Unlock()
	dir := t.TempDir()
	p := startProcess(t, "serve", "--config", writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL()}))
	st := openStateStore(t, "sqlite:"+filepath.Join(dir, "strangler.db"))

	put := func(id, v string) {
		t.Helper()
		if code, _, err := sendRequest("PUT", "http://"+p.public+"/items/"+id, v, nil); err != nil || code != http.StatusOK {
			t.Fatalf("PUT %s: got %d %v, want 200 from the primary", id, code, err)
		}
	}
	put("poison", `{"v":1}`)
	for i := range 20 {
		put(fmt.Sprintf("a%d", i), `{"v":1}`)
	}
	testkit.Eventually(t, 10*time.Second, "the refused write is dead", func() bool { return queueDepth(t, st)["dead"] == 1 })
	// Writes after the dead letter flow too.
	for i := range 20 {
		put(fmt.Sprintf("b%d", i), `{"v":2}`)
	}
	testkit.Eventually(t, 10*time.Second, "the other writes are applied", func() bool {
		d := queueDepth(t, st)
		return d["pending"]+d["sent"] == 0
	})

	onModern, _ := modern.snapshot()
	for _, prefix := range []string{"a", "b"} {
		for i := range 20 {
			if _, ok := onModern[fmt.Sprintf("%s%d", prefix, i)]; !ok {
				t.Errorf("item %s%d: missing on the secondary, want it applied despite the dead letter", prefix, i)
			}
		}
	}
	if _, ok := onModern["poison"]; ok {
		t.Error("the refused item is on the secondary")
	}
	code, body := adminDo(t, p.admin, "GET", "/admin/repairs?state=dead", nil)
	var list struct {
		Repairs []struct {
			Resource  string `json:"resource"`
			LastError string `json:"last_error"`
			Attempts  int    `json:"attempts"`
		} `json:"repairs"`
	}
	if err := json.Unmarshal(body, &list); err != nil || code != 200 {
		t.Fatalf("GET /admin/repairs?state=dead: %d %s", code, body)
	}
	if len(list.Repairs) != 1 || !strings.Contains(list.Repairs[0].LastError, "400") || list.Repairs[0].Attempts != 1 {
		t.Errorf("dead letters: got %+v, want one, refused with 400 on its first attempt", list.Repairs)
	}
	testkit.Eventually(t, 10*time.Second, `strangler_repair_queue_depth{state="dead"} = 1`, func() bool {
		return metricValue(t, p.admin, `strangler_repair_queue_depth{state="dead"}`) == "1"
	})
}

// TestDualWriteStoreUnavailable: with the state store unreachable a write
// on a dual-write route is refused with 503 before the primary sees it (it
// could not be journaled, so it could be lost), while reads are served.
func TestDualWriteStoreUnavailable(t *testing.T) {
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	proxy, dsn := testdb.NewProxy(t, testdb.Postgres(t))
	dir := t.TempDir()
	p := startProcess(t, "serve", "--config", writeFacadeConfig(t, dir, facadeConfig{
		legacy: legacy.URL(), modern: modern.URL(), store: dsn,
	}))
	if code, _, err := sendRequest("PUT", "http://"+p.public+"/items/1", `{"v":1}`, nil); err != nil || code != http.StatusOK {
		t.Fatalf("PUT with the store up: got %d %v, want 200", code, err)
	}

	proxy.Cut()
	code, body, err := sendRequest("PUT", "http://"+p.public+"/items/2", `{"v":2}`, nil)
	if err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("PUT with the store down: got %d %q %v, want 503", code, body, err)
	}
	if onLegacy, _ := legacy.snapshot(); onLegacy["2"] != "" {
		t.Error("the primary applied a write that could not be journaled")
	}
	code, body, err = sendRequest("GET", "http://"+p.public+"/items/1", "", nil)
	if err != nil || code != http.StatusOK || body != `{"v":1}` {
		t.Errorf("GET with the store down: got %d %q %v, want 200 {\"v\":1}", code, body, err)
	}

	proxy.Restore()
	testkit.Eventually(t, 10*time.Second, "writes are accepted again", func() bool {
		code, _, _ := sendRequest("PUT", "http://"+p.public+"/items/3", `{"v":3}`, nil)
		return code == http.StatusOK
	})
}
