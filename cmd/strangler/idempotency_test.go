package main

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/internal/testkit"
	"strangler/store"
)

// TestIdempotencyKeyMakesRetriesOneWrite sends what a client with a flaky
// network sends: three concurrent tries of one create under one
// Idempotency-Key, and a fourth with another body. The primary honours
// keys. It must apply the create once, the facade journal it once, the
// secondary get it once with the body the primary applied; the others are
// answered 409 and 422 as the contract says, and a retry after it all
// reaches the primary but journals nothing.
func TestIdempotencyKeyMakesRetriesOneWrite(t *testing.T) {
	onBothStores(t, func(t *testing.T, dsn func(string) string) {
		legacy := newRecordingBackend(t, "legacy", true, false)
		modern := newRecordingBackend(t, "modern", true, true)
		// The primary keeps its first create waiting until the test has
		// seen what the retries got.
		arrived, release := make(chan struct{}, 8), make(chan struct{})
		legacy.mu.Lock()
		legacy.hold = func(*http.Request) {
			arrived <- struct{}{}
			<-release
		}
		legacy.mu.Unlock()
		dir := t.TempDir()
		r := startRun(t, "serve", "--config", writeFacadeConfig(t, dir, facadeConfig{
			legacy: legacy.URL(), modern: modern.URL(), store: dsn(dir), timeout: 30 * time.Second,
		}))
		st := openStateStore(t, dsn(dir))
		url := "http://" + r.public + "/items"
		const key = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
		post := func(body, key string) (int, string) {
			code, answer, err := sendRequest("POST", url, body, map[string]string{"Idempotency-Key": key})
			if err != nil {
				t.Errorf("POST with key %.10q: %v", key, err)
			}
			return code, answer
		}
		type result struct {
			code int
			body string
		}
		results := make(chan result, 3)
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				code, body := post(`{"name":"Ada"}`, key)
				results <- result{code, body}
			})
		}
		select {
		case <-arrived:
		case <-time.After(20 * time.Second):
			close(release)
			t.Fatal("no try reached the primary")
		}
		for i := range 2 {
			select {
			case got := <-results:
				if got.code != http.StatusConflict || errorOf(t, got.body) != "a request with this Idempotency-Key is in progress" {
					t.Errorf("try %d while the first was with the primary: got %d %s, want 409 saying it is in progress", i+2, got.code, got.body)
				}
			case <-time.After(20 * time.Second):
				close(release)
				t.Fatal("the other tries got no answer while the first was with the primary")
			}
		}
		code, body := post(`{"name":"Grace"}`, key)
		if code != http.StatusUnprocessableEntity || !strings.Contains(errorOf(t, body), "sent with another request") {
			t.Errorf("the key with another body: got %d %s, want 422", code, body)
		}
		// The refusals count by reason, not only as backend="none".
		for reason, want := range map[string]string{"key_in_flight": "2", "key_reused": "1"} {
			sample := `strangler_refused_total{reason="` + reason + `",route="create-item"}`
			if got := metricValue(t, r.admin, sample); got != want {
				t.Errorf("%s = %q, want %s", sample, got, want)
			}
		}
		close(release)
		wg.Wait()
		first := <-results
		if first.code != http.StatusCreated {
			t.Fatalf("the try the primary served: got %d %s, want 201", first.code, first.body)
		}

		waitDrained(t, st, 20*time.Second)
		if received, applied := legacy.counts(); received[key] != 1 || applied[key] != 1 {
			t.Errorf("the primary received %d and applied %d writes with the key, want 1 and 1", received[key], applied[key])
		}
		items, _ := modern.snapshot()
		if want := map[string]string{"1": `{"name":"Ada"}`}; !sameMap(items, want) {
			t.Errorf("the secondary holds %v, want %v: the body the primary applied, once", items, want)
		}
		if n := writesReceived(modern); n != 1 {
			t.Errorf("the secondary received %d writes, want 1", n)
		}
		if n := journaledWrites(t, st); n != 1 {
			t.Errorf("the facade journaled %d writes, want 1", n)
		}

		t.Run("a retry after it finished reaches the primary and journals nothing", func(t *testing.T) {
			code, body := post(`{"name":"Ada"}`, key)
			if code != first.code || body != first.body {
				t.Errorf("got %d %s, want the primary's first answer %d %s", code, body, first.code, first.body)
			}
			if received, applied := legacy.counts(); received[key] != 2 || applied[key] != 1 {
				t.Errorf("the primary received %d and applied %d writes with the key, want 2 and 1", received[key], applied[key])
			}
			// Nothing new in the journal means nothing more can reach
			// the secondary.
			if n := journaledWrites(t, st); n != 1 {
				t.Errorf("the facade journaled %d writes, want still 1", n)
			}
			if n := writesReceived(modern); n != 1 {
				t.Errorf("the secondary received %d writes, want still 1", n)
			}
		})
		t.Run("a key of 256 characters is refused before any backend sees it", func(t *testing.T) {
			before, _ := legacy.counts()
			code, body := post(`{"name":"Lin"}`, strings.Repeat("k", 256))
			if code != http.StatusBadRequest || errorOf(t, body) != "the Idempotency-Key is longer than 255 characters" {
				t.Errorf("got %d %s, want 400 saying the key is too long", code, body)
			}
			if got := metricValue(t, r.admin, `strangler_refused_total{reason="key_invalid",route="create-item"}`); got != "1" {
				t.Errorf(`strangler_refused_total{reason="key_invalid"} = %q, want 1`, got)
			}
			if after, _ := legacy.counts(); sumCounts(after) != sumCounts(before) {
				t.Errorf("the primary received %d writes, want none", sumCounts(after)-sumCounts(before))
			}
			if code, body := post(`{"name":"Lin"}`, strings.Repeat("k", 255)); code != http.StatusCreated {
				t.Errorf("a key of 255 characters: got %d %s, want 201", code, body)
			}
		})
	})
}

// errorOf is the error message of a JSON error body.
func errorOf(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Errorf("answer %q is not a JSON error: %v", body, err)
	}
	return e.Error
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sumCounts(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// writesReceived is how many writes reached b, whatever their keys.
func writesReceived(b *recordingBackend) int {
	received, _ := b.counts()
	return sumCounts(received)
}

// journaledWrites counts the facade's journal entries.
func journaledWrites(t *testing.T, st *store.Store) int {
	t.Helper()
	all, err := st.ListRepairs(context.Background(), store.RepairFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

// TestIdempotencyKeyRetriesAfterAFailedTry covers the retries a failed try
// leads to: after the primary refused the write, the retry is a new write
// the secondary must get if the primary applies it now; after the
// primary's answer was lost (applied, then the connection dropped), the
// retry's answer settles the write, which would otherwise wait for an
// operator as unknown.
func TestIdempotencyKeyRetriesAfterAFailedTry(t *testing.T) {
	onBothStores(t, func(t *testing.T, dsn func(string) string) {
		legacy := newRecordingBackend(t, "legacy", true, false)
		modern := newRecordingBackend(t, "modern", true, true)
		dir := t.TempDir()
		r := startRun(t, "serve", "--config", writeFacadeConfig(t, dir, facadeConfig{
			legacy: legacy.URL(), modern: modern.URL(), store: dsn(dir),
		}))
		st := openStateStore(t, dsn(dir))
		url := "http://" + r.public + "/items"
		post := func(body, key string) int {
			code, answer, err := sendRequest("POST", url, body, map[string]string{"Idempotency-Key": key})
			if err != nil {
				t.Fatalf("POST: %v", err)
			}
			t.Logf("POST %s with key %s: %d %s", body, key, code, answer)
			return code
		}

		t.Run("a retry of a write the primary refused is journaled and reaches the secondary", func(t *testing.T) {
			legacy.fault.Store(int32(fault503))
			if code := post(`{"name":"Ada"}`, "key-refused"); code != http.StatusServiceUnavailable {
				t.Fatalf("the refused try: got %d, want the primary's 503", code)
			}
			legacy.fault.Store(int32(faultNone))
			if code := post(`{"name":"Ada"}`, "key-refused"); code != http.StatusCreated {
				t.Fatalf("the retry: got %d, want 201", code)
			}
			waitDrained(t, st, 20*time.Second)
			if items, _ := modern.snapshot(); items["1"] != `{"name":"Ada"}` {
				t.Errorf("the secondary holds %v, want item 1 as the primary applied it", items)
			}
			if n := journaledWrites(t, st); n != 2 {
				t.Errorf("%d writes journaled, want 2: the refused try and the retry", n)
			}
		})
		t.Run("a retry of a write whose answer was lost settles it", func(t *testing.T) {
			legacy.fault.Store(int32(faultApplyThenDrop))
			if code := post(`{"name":"Grace"}`, "key-lost"); code != http.StatusBadGateway {
				t.Fatalf("the try whose answer was lost: got %d, want 502", code)
			}
			legacy.fault.Store(int32(faultNone))
			testkit.Eventually(t, 10*time.Second, "the write whose answer was lost is unknown", func() bool {
				return queueDepth(t, st)["unknown"] == 1
			})
			if code := post(`{"name":"Grace"}`, "key-lost"); code != http.StatusCreated {
				t.Fatalf("the retry: got %d, want the primary's replayed 201", code)
			}
			waitDrained(t, st, 20*time.Second)
			if received, applied := legacy.counts(); received["key-lost"] != 2 || applied["key-lost"] != 1 {
				t.Errorf("the primary received %d and applied %d writes with the key, want 2 and 1", received["key-lost"], applied["key-lost"])
			}
			if items, _ := modern.snapshot(); items["2"] != `{"name":"Grace"}` {
				t.Errorf("the secondary holds %v, want item 2 as the primary applied it", items)
			}
			if n := journaledWrites(t, st); n != 3 {
				t.Errorf("%d writes journaled, want 3: the retry settled the lost one", n)
			}
		})
		sameRecords(t, legacy, modern)
		if n := writesReceived(modern); n != 2 {
			t.Errorf("the secondary received %d writes, want 2", n)
		}
	})
}

// TestIdempotencyKeyRetryAfterThePrimaryChanged: a write the old primary
// applied reaches the new primary from the journal, under the facade's
// key; a client's retry sent to the new primary would be applied again,
// so it is refused.
func TestIdempotencyKeyRetryAfterThePrimaryChanged(t *testing.T) {
	legacy := newRecordingBackend(t, "legacy", true, false)
	modern := newRecordingBackend(t, "modern", true, true)
	dir := t.TempDir()
	c := facadeConfig{legacy: legacy.URL(), modern: modern.URL()}
	path := writeFacadeConfig(t, dir, c)
	r := startRun(t, "serve", "--config", path)
	st := openStateStore(t, "sqlite:"+filepath.Join(dir, "strangler.db"))
	send := func() (int, string) {
		code, body, err := sendRequest("POST", "http://"+r.public+"/items", `{"name":"Ada"}`, map[string]string{"Idempotency-Key": "key-moved"})
		if err != nil {
			t.Fatal(err)
		}
		return code, body
	}
	if code, body := send(); code != http.StatusCreated {
		t.Fatalf("the first try: got %d %s, want 201", code, body)
	}
	waitDrained(t, st, 20*time.Second)

	c.routes = strings.Replace(dualWriteRoutes, "id_field: id}", "id_field: id, primary: modern}", 1)
	next, err := os.ReadFile(writeFacadeConfig(t, dir, c))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, next, 0o644); err != nil {
		t.Fatal(err)
	}
	r.logs.waitFor(t, "config reloaded", nil, 15*time.Second)
	code, body := send()
	if want := "the request with this Idempotency-Key went to the route's previous primary"; code != http.StatusConflict || !strings.Contains(errorOf(t, body), want) {
		t.Errorf("the retry after the primary changed: got %d %s, want 409 saying %q", code, body, want)
	}
	if n := writesReceived(modern); n != 1 {
		t.Errorf("modern received %d writes, want 1: the journaled one", n)
	}
	if n := journaledWrites(t, st); n != 1 {
		t.Errorf("%d writes journaled, want 1", n)
	}
}
