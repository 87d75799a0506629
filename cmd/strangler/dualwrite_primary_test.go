package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testkit"
	"strangler/store"
)

// These tests make the primary of a dual-write route fail in each way a
// backend can, with legacy and with modern as the primary, through a real
// facade process: what the client gets, what the journal records, and
// that the secondary never gets a write the primary did not apply.

// primaryFacade is a dual-write facade process with its two backends.
type primaryFacade struct {
	p                  *process
	store              *store.Store
	primary, secondary *recordingBackend
}

// startPrimaryFacade starts a facade whose routes have primary as their
// primary; keys says whether the primary honours Idempotency-Key (and the
// route says primary_idempotent). c's backends, store and routes are
// filled in.
func startPrimaryFacade(t *testing.T, primary string, keys bool, c facadeConfig) *primaryFacade {
	t.Helper()
	legacy := newRecordingBackend(t, "legacy", keys && primary == "legacy", false)
	modern := newRecordingBackend(t, "modern", true, true)
	if primary == "modern" {
		modern = newRecordingBackend(t, "modern", keys, false)
		legacy = newRecordingBackend(t, "legacy", true, true)
	}
	dir := t.TempDir()
	c.legacy, c.modern = legacy.URL(), modern.URL()
	c.routes = fmt.Sprintf(`
  - {name: put-item, match: "PUT /items/{id}", mode: dual-write, primary: %[1]s, primary_idempotent: %[2]v}
  - {name: create-item, match: "POST /items", mode: dual-write, primary: %[1]s, id_field: id}
`, primary, keys)
	f := &primaryFacade{p: startProcess(t, "serve", "--config", writeFacadeConfig(t, dir, c)),
		store: openStateStore(t, "sqlite:"+filepath.Join(dir, "strangler.db")), primary: legacy, secondary: modern}
	if primary == "modern" {
		f.primary, f.secondary = modern, legacy
	}
	return f
}

// only returns the one journaled write.
func (f *primaryFacade) only(t *testing.T) domain.RepairSummary {
	t.Helper()
	list, err := f.store.ListRepairs(context.Background(), store.RepairFilter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("journaled writes: %+v, %v; want one", list, err)
	}
	return list[0]
}

func (f *primaryFacade) counted(t *testing.T, result string) string {
	return metricValue(t, f.p.admin, fmt.Sprintf(`strangler_dualwrite_total{result=%q,route="put-item"}`, result))
}

func TestDualWriteWhenThePrimaryFails(t *testing.T) {
	// Its subtests wait for leases to pass: with the other waiting tests.
	t.Parallel()
	for _, primary := range []string{"legacy", "modern"} {
		t.Run("primary "+primary, func(t *testing.T) {
			// Each waits for a lease to pass in its last subtest: together.
			t.Parallel()
			t.Run("refusing connections: 502, skipped", func(t *testing.T) {
				f := startPrimaryFacade(t, primary, false, facadeConfig{})
				f.primary.stop()
				code, _, err := sendRequest("PUT", "http://"+f.p.public+"/items/1", `{"v":1}`, nil)
				if err != nil || code != http.StatusBadGateway {
					t.Errorf("the client got %d %v, want 502", code, err)
				}
				if w := f.only(t); w.State != domain.StateSkipped || w.Outcome.Status != http.StatusBadGateway {
					t.Errorf("the write is %s with status %d, want skipped with 502", w.State, w.Outcome.Status)
				}
				if got := f.counted(t, "skipped"); got != "1" {
					t.Errorf("skipped counted %q, want 1", got)
				}
				if n := len(f.secondary.headersOfWrites()); n != 0 {
					t.Errorf("the secondary got %d writes the primary did not apply", n)
				}
			})
			t.Run("answering 503: the client gets it, skipped", func(t *testing.T) {
				f := startPrimaryFacade(t, primary, false, facadeConfig{})
				f.primary.fault.Store(int32(fault503))
				code, _, err := sendRequest("PUT", "http://"+f.p.public+"/items/1", `{"v":1}`, nil)
				if err != nil || code != http.StatusServiceUnavailable {
					t.Errorf("the client got %d %v, want the primary's 503", code, err)
				}
				if w := f.only(t); w.State != domain.StateSkipped || w.Outcome.Status != http.StatusServiceUnavailable {
					t.Errorf("the write is %s with status %d, want skipped with 503", w.State, w.Outcome.Status)
				}
				if got := f.counted(t, "skipped"); got != "1" {
					t.Errorf("skipped counted %q, want 1", got)
				}
				if n := len(f.secondary.headersOfWrites()); n != 0 {
					t.Errorf("the secondary got %d writes the primary did not apply", n)
				}
			})
			t.Run("timing out after applying: 504, unknown for an operator", func(t *testing.T) {
				f := startPrimaryFacade(t, primary, false, facadeConfig{timeout: time.Second})
				f.primary.fault.Store(int32(faultApplyThenHang))
				code, _, err := sendRequest("PUT", "http://"+f.p.public+"/items/1", `{"v":1}`, nil)
				if err != nil || code != http.StatusGatewayTimeout {
					t.Errorf("the client got %d %v, want 504", code, err)
				}
				if w := f.only(t); w.State != domain.StateUnknown {
					t.Errorf("the write is %s, want unknown: the primary may have applied it", w.State)
				}
				if got := f.counted(t, "unknown"); got != "1" {
					t.Errorf("unknown counted %q, want 1", got)
				}
				if n := len(f.secondary.headersOfWrites()); n != 0 {
					t.Errorf("the secondary got %d writes whose primary outcome is unknown", n)
				}
			})
			t.Run("timing out after applying on a route whose primary honours keys: resent with its key, then delivered", func(t *testing.T) {
				// The journal's lease is the timeout and 30 s: recovery comes
				// after it.
				t.Parallel()
				f := startPrimaryFacade(t, primary, true, facadeConfig{timeout: time.Second})
				f.primary.fault.Store(int32(faultApplyThenHang))
				code, _, err := sendRequest("PUT", "http://"+f.p.public+"/items/1", `{"v":1}`, nil)
				if err != nil || code != http.StatusGatewayTimeout {
					t.Errorf("the client got %d %v, want 504", code, err)
				}
				f.primary.fault.Store(int32(faultNone))
				testkit.Eventually(t, 2*time.Minute, "the write resent and delivered", func() bool {
					return f.only(t).State == domain.StateDone
				})
				received, applied := f.primary.counts()
				var key string
				for k := range received {
					key = k
				}
				if len(received) != 1 || received[key] != 2 || applied[key] != 1 || key == "" {
					t.Errorf("the primary received %v and applied %v, want one key, sent twice, applied once", received, applied)
				}
				h := f.secondary.headersOfWrites()
				if len(h) != 1 || h[0].Get("X-Strangler-Primary-Status") != "200" {
					t.Errorf("the secondary got %d writes (%v), want one with the primary's 200", len(h), h)
				}
			})
		})
	}
}

// TestDualWriteGivesUpAfterMaxAttempts: a secondary that keeps failing
// makes the write dead after repairs.max_attempts tries; later writes to
// its resource wait, other resources go on, an operator sees why.
func TestDualWriteGivesUpAfterMaxAttempts(t *testing.T) {
	f := startPrimaryFacade(t, "legacy", false, facadeConfig{maxAttempts: 3})
	f.secondary.fault.Store(int32(fault503))
	put := func(path, body string) {
		t.Helper()
		if code, _, err := sendRequest("PUT", "http://"+f.p.public+path, body, nil); err != nil || code != http.StatusOK {
			t.Fatalf("PUT %s: %d %v, want the primary's 200", path, code, err)
		}
	}
	put("/items/1", `{"v":1}`)
	testkit.Eventually(t, 30*time.Second, "the write dead", func() bool { return queueDepth(t, f.store)["dead"] == 1 })
	code, body := adminDo(t, f.p.admin, "GET", "/admin/repairs?state=dead", nil)
	var list struct {
		Repairs []struct {
			Attempts  int    `json:"attempts"`
			LastError string `json:"last_error"`
		} `json:"repairs"`
	}
	if err := json.Unmarshal(body, &list); err != nil || code != http.StatusOK {
		t.Fatalf("GET /admin/repairs?state=dead: %d %s", code, body)
	}
	if len(list.Repairs) != 1 || list.Repairs[0].Attempts != 3 || !strings.Contains(list.Repairs[0].LastError, "503") {
		t.Errorf("dead writes: %+v, want one after 3 attempts, its last error the 503", list.Repairs)
	}
	if got := metricValue(t, f.p.admin, `strangler_dualwrite_total{result="dead",route="put-item"}`); got != "1" {
		t.Errorf("dead counted %q, want 1", got)
	}

	// The secondary is back: the next write to the dead one's resource
	// waits behind it, a write to another resource is applied.
	f.secondary.fault.Store(int32(faultNone))
	put("/items/1", `{"v":2}`)
	put("/items/2", `{"v":1}`)
	testkit.Eventually(t, 30*time.Second, "the other resource's write applied", func() bool {
		items, _ := f.secondary.snapshot()
		return items["2"] != ""
	})
	if items, _ := f.secondary.snapshot(); items["1"] != "" {
		t.Errorf("item 1 reached the secondary (%s) while its earlier write is dead", items["1"])
	}
}

// TestDualWritePrimaryHeadersReachTheSecondary: the secondary learns what
// the primary answered, so it can keep the primary's id.
func TestDualWritePrimaryHeadersReachTheSecondary(t *testing.T) {
	for _, primary := range []string{"legacy", "modern"} {
		t.Run("primary "+primary, func(t *testing.T) {
			f := startPrimaryFacade(t, primary, false, facadeConfig{})
			code, body, err := sendRequest("POST", "http://"+f.p.public+"/items", `{"name":"x"}`, nil)
			var created struct{ ID string }
			if err != nil || code != http.StatusCreated || json.Unmarshal([]byte(body), &created) != nil {
				t.Fatalf("POST /items: %d %s %v", code, body, err)
			}
			if code, _, err := sendRequest("PUT", "http://"+f.p.public+"/items/"+created.ID, `{"name":"y"}`, nil); err != nil || code != http.StatusOK {
				t.Fatalf("PUT: %d %v", code, err)
			}
			waitDrained(t, f.store, 30*time.Second)
			h := f.secondary.headersOfWrites()
			if len(h) != 2 {
				t.Fatalf("the secondary got %d writes, want 2", len(h))
			}
			for name, want := range map[string]string{
				"X-Strangler-Primary-Status":   "201",
				"X-Strangler-Primary-Location": "/items/" + created.ID,
				"X-Strangler-Primary-Id":       created.ID,
			} {
				if got := h[0].Get(name); got != want {
					t.Errorf("the create: %s %q, want %q", name, got, want)
				}
			}
			if h[1].Get("X-Strangler-Primary-Status") != "200" || h[1].Values("X-Strangler-Primary-Location") != nil || h[1].Values("X-Strangler-Primary-Id") != nil {
				t.Errorf("the update: %v, want X-Strangler-Primary-Status 200 alone", h[1])
			}
			if h[0].Get("Idempotency-Key") == "" || h[0].Get("Idempotency-Key") == h[1].Get("Idempotency-Key") {
				t.Errorf("keys %q and %q, want one of its own per write", h[0].Get("Idempotency-Key"), h[1].Get("Idempotency-Key"))
			}
			items, _ := f.secondary.snapshot()
			if items[created.ID] != `{"name":"y"}` {
				t.Errorf("the secondary holds %v, want item %s under the primary's id", items, created.ID)
			}
		})
	}
}
