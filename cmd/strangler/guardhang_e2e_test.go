package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// TestGuardRollsBackAModernEveryClientGivesUpOn: modern takes every
// request and never answers, and every client gives up after 800ms, long
// before modern's 2s timeout. Each request was a 499 and nothing else, so
// the guard never rolled the route back while no client was answered.
// Now a client that waited on modern for a quarter of its timeout counts
// as modern failing: the guard rolls the route back to fallback, and its
// clients get legacy's answer. Clients that left at once before, however
// many, did not count: the rollback's reason counts only those that gave
// up.
func TestGuardRollsBackAModernEveryClientGivesUpOn(t *testing.T) {
	legacy := backendAnswering(t, "legacy")
	arrived := make(chan struct{}, 64)
	done := make(chan struct{})
	modern := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		select {
		case <-r.Context().Done():
		case <-done:
		}
	}))
	t.Cleanup(modern.Close)
	t.Cleanup(func() { close(done) })
	dir := t.TempDir()
	cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL, modern: modern.URL, timeout: 2 * time.Second, routes: `
  - {name: reads, match: "GET /reads/{id}", mode: modern, guard: {max_error_rate: 5%, window: 1m, min_requests: 5}}
`})
	f := startRun(t, "serve", "--config", cfg)
	left := func() string {
		return metricValue(t, f.admin, `strangler_requests_total{backend="modern",code="499",route="reads"}`)
	}

	// Hostile clients leave the moment modern has their request.
	for i := range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://%s/reads/%d", f.public, i), nil)
		go func() {
			<-arrived
			cancel()
		}()
		if resp, err := e2eClient.Do(req); err == nil {
			resp.Body.Close()
		}
		cancel()
	}
	testkit.Eventually(t, 10*time.Second, "20 499s counted", func() bool { return left() == "20" })

	// Clients that give up after 800ms.
	impatient := &http.Client{Timeout: 800 * time.Millisecond}
	held := func() (string, bool) {
		var rt struct {
			Mode string         `json:"mode"`
			Held map[string]any `json:"held"`
		}
		adminGetJSON(t, f.admin, "/admin/routes/reads", &rt)
		return rt.Mode, rt.Held != nil
	}
	gaveUp := 0
	testkit.Eventually(t, 30*time.Second, "reads rolled back", func() bool {
		resp, err := impatient.Get("http://" + f.public + "/reads/1")
		if err == nil {
			resp.Body.Close()
		} else {
			gaveUp++
		}
		_, h := held()
		return h
	})
	if mode, _ := held(); mode != "fallback" {
		t.Errorf("the guard rolled reads back to %s, want fallback", mode)
	}
	var audit struct {
		Entries []struct{ Action, Route, Reason string } `json:"entries"`
	}
	adminGetJSON(t, f.admin, "/admin/audit", &audit)
	for _, e := range audit.Entries {
		if e.Action != "rollback" {
			continue
		}
		// "modern error rate 100% (5 of 5) over …": the clients that
		// gave up, none of those that left at once.
		var n, of int
		if _, after, ok := strings.Cut(e.Reason, "modern error rate 100% ("); !ok {
			t.Errorf("the rollback's reason: %q; want every exchange counted failed", e.Reason)
		} else if _, err := fmt.Sscanf(after, "%d of %d", &n, &of); err != nil || n != of || of > gaveUp {
			t.Errorf("the rollback's reason: %q; want at most the %d clients that gave up counted", e.Reason, gaveUp)
		}
	}
	if want := fmt.Sprint(20 + gaveUp); left() != want {
		t.Errorf(`strangler_requests_total{code="499"}: %s, want %s: a client that gave up is still a 499`, left(), want)
	}
	// Its clients get legacy's answer now, as modern still hangs.
	resp, err := e2eClient.Get("http://" + f.public + "/reads/2")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Strangler-Backend"); resp.StatusCode != http.StatusOK || got != "legacy" {
		t.Errorf("after the rollback: %d from %q, want 200 from legacy", resp.StatusCode, got)
	}
}
