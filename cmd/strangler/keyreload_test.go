package main

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestAReloadBetweenTwoDeliveriesKeepsTheWritesKey: a delivery the
// secondary applied but whose answer was lost, then a reload that
// changes the route's primary_idempotent, then the next delivery: it
// carries the key the first did, so the secondary, which honours keys,
// applies the write once, as the primary did. Before, the key followed
// the reload (the client's, then the write's id, or the other way
// round): the secondary held 2 entries against the primary's 1.
func TestAReloadBetweenTwoDeliveriesKeepsTheWritesKey(t *testing.T) {
	t.Parallel()
	const plain = `  - {name: append-entry, match: "POST /accounts/{id}/entries", mode: dual-write}`
	const keyed = `  - {name: append-entry, match: "POST /accounts/{id}/entries", mode: dual-write, primary_idempotent: true}`
	eachStore(t, func(t *testing.T, dsn func(string) string) {
		for _, tc := range []struct {
			name, before, after string
			// clientsKey says the secondary gets the client's key (the
			// route said primary_idempotent when the write was
			// journaled), not the write's id.
			clientsKey bool
		}{
			{"primary_idempotent removed", keyed, plain, true},
			{"primary_idempotent added", plain, keyed, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				legacy := newRecordingBackend(t, "legacy", true, false)
				modern := newRecordingBackend(t, "modern", true, false)
				// The first delivery is applied and its answer lost; the
				// next ones are answered 503 until the reload is done.
				modern.fault.Store(int32(faultApplyThenDrop))
				first := make(chan struct{})
				var once sync.Once
				modern.mu.Lock()
				modern.hold = func(*http.Request) {
					once.Do(func() {
						modern.fault.Store(int32(fault503))
						close(first)
					})
				}
				modern.mu.Unlock()

				dir := t.TempDir()
				c := facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: dsn(dir),
					routes: strings.Replace(dualWriteRoutes, plain, tc.before, 1)}
				path := writeFacadeConfig(t, dir, c)
				r := startRun(t, "serve", "--config", path)
				st := openStateStore(t, c.store)

				code, out, err := sendRequest("POST", "http://"+r.public+"/accounts/7/entries", `{"amount":5}`,
					map[string]string{"Idempotency-Key": "client-key-7"})
				if err != nil || code != http.StatusCreated {
					t.Fatalf("POST /accounts/7/entries: got %d %s %v, want 201", code, out, err)
				}
				select {
				case <-first:
				case <-time.After(60 * time.Second):
					t.Fatal("the secondary got no delivery in 60 s")
				}
				c.routes = strings.Replace(dualWriteRoutes, plain, tc.after, 1)
				reloadTo(t, r, dir, path, c, 5)
				modern.fault.Store(int32(faultNone))
				waitDrained(t, st, 60*time.Second)

				_, primary := legacy.snapshot()
				_, secondary := modern.snapshot()
				if len(primary["accounts/7"]) != 1 || len(secondary["accounts/7"]) != 1 {
					t.Errorf("the primary holds %d entries, the secondary %d, want 1 each", len(primary["accounts/7"]), len(secondary["accounts/7"]))
				}
				received, _ := modern.counts()
				if _, ok := received["client-key-7"]; len(received) != 1 || ok != tc.clientsKey {
					t.Errorf("the secondary got the keys %v, want one key on every delivery, the client's: %v", received, tc.clientsKey)
				}
			})
		}
	})
}
