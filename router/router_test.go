package router

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"strangler/internal/testkit"
)

func TestModes(t *testing.T) {
	legacy := newBackend(t, answer(200, `{"from":"legacy"}`))
	modern := newBackend(t, answer(200, `{"from":"modern"}`))
	f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: old, match: "GET /old/{id}", mode: legacy}
  - {name: new, match: "GET /new/{id}", mode: modern}
  - {name: both, match: "GET /both/{id}", mode: fallback}
`)
	for _, tc := range []struct {
		path, want          string
		legacyHits, modHits int
	}{
		{"/old/1", `{"from":"legacy"}`, 1, 0},
		{"/new/1", `{"from":"modern"}`, 0, 1},
		{"/both/1", `{"from":"modern"}`, 0, 1},
		{"/unmatched", `{"from":"legacy"}`, 1, 0},
	} {
		t.Run("GET "+tc.path+" is served by the right backend", func(t *testing.T) {
			l0, m0 := legacy.hits(), modern.hits()
			resp, body := f.get(t, tc.path)
			if resp.StatusCode != 200 || body != tc.want {
				t.Errorf("got %d %s, want 200 %s", resp.StatusCode, body, tc.want)
			}
			if got := legacy.hits() - l0; got != tc.legacyHits {
				t.Errorf("legacy got %d requests, want %d", got, tc.legacyHits)
			}
			if got := modern.hits() - m0; got != tc.modHits {
				t.Errorf("modern got %d requests, want %d", got, tc.modHits)
			}
		})
	}
	t.Run("route modes are exported as metrics", func(t *testing.T) {
		for route, mode := range map[string]string{"old": "legacy", "new": "modern", "both": "fallback"} {
			if got := f.metric(t, "strangler_route_mode", map[string]string{"route": route, "mode": mode}); got != 1 {
				t.Errorf("strangler_route_mode{route=%q,mode=%q} = %v, want 1", route, mode, got)
			}
			if got := f.metric(t, "strangler_route_mode", map[string]string{"route": route, "mode": "shadow"}); got != 0 {
				t.Errorf("route %q reports a mode it is not in", route)
			}
		}
	})
	t.Run("requests are counted by route, backend and code", func(t *testing.T) {
		// Its own requests, so that it runs alone too (-run).
		oldCount := map[string]string{"route": "old", "backend": "legacy", "code": "200"}
		defaultCount := map[string]string{"route": "default", "backend": "legacy", "code": "200"}
		newDurations := map[string]string{"route": "new", "backend": "modern"}
		old0, default0, new0 := f.metric(t, "strangler_requests_total", oldCount), f.metric(t, "strangler_requests_total", defaultCount), f.metric(t, "strangler_request_duration_seconds", newDurations)
		f.get(t, "/old/2")
		f.get(t, "/unmatched/2")
		f.get(t, "/new/2")
		if got := f.metric(t, "strangler_requests_total", oldCount) - old0; got != 1 {
			t.Errorf("old/legacy/200 went up by %v, want 1", got)
		}
		if got := f.metric(t, "strangler_requests_total", defaultCount) - default0; got != 1 {
			t.Errorf("unmatched requests: default/legacy/200 went up by %v, want 1", got)
		}
		if got := f.metric(t, "strangler_request_duration_seconds", newDurations) - new0; got != 1 {
			t.Errorf("duration samples for new/modern went up by %v, want 1", got)
		}
	})
}

func TestGetRouteAnswersHead(t *testing.T) {
	legacy := newBackend(t, answer(200, "legacy"))
	modern := newBackend(t, answer(200, "modern"))
	f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: get, match: "GET /items/{id}", mode: modern}
`)
	req, _ := http.NewRequest(http.MethodHead, f.URL+"/items/3", nil)
	f.do(t, req)
	if modern.hits() != 1 || modern.last(t).Method != http.MethodHead {
		t.Errorf("HEAD /items/3 did not reach modern as HEAD (modern hits %d)", modern.hits())
	}
}

func TestDefaultBackendModern(t *testing.T) {
	legacy := newBackend(t, answer(200, "legacy"))
	modern := newBackend(t, answer(200, "modern"))
	f := newFacade(t, legacy.URL, modern.URL, "default: modern", `
  - {name: get, match: "GET /items/{id}", mode: legacy}
`)
	if _, body := f.get(t, "/anything/else"); body != "modern" {
		t.Errorf("unmatched request got %q, want it served by the default backend, modern", body)
	}
}

func TestBackendFailuresAnswerJSON(t *testing.T) {
	slow := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	})
	f := newFacade(t, deadURL(t), slow.URL, "", `
  - {name: down, match: "GET /down", mode: legacy}
  - {name: slow, match: "GET /slow", mode: modern}
`)
	for _, tc := range []struct {
		path   string
		status int
	}{{"/down", 502}, {"/slow", 504}} {
		t.Run(tc.path+" answers "+http.StatusText(tc.status), func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, f.URL+tc.path, nil)
			req.Header.Set("X-Request-Id", "req-"+tc.path[1:])
			resp, body := f.do(t, req)
			if resp.StatusCode != tc.status {
				t.Fatalf("got %d, want %d", resp.StatusCode, tc.status)
			}
			var e struct {
				Error     string `json:"error"`
				RequestID string `json:"request_id"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
				t.Fatalf("body %q is not a JSON error", body)
			}
			if e.RequestID != "req-"+tc.path[1:] {
				t.Errorf("request_id = %q, want the client's", e.RequestID)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
	t.Run("the failure is logged without the path", func(t *testing.T) {
		lines := f.logLines(t, "backend failed")
		if len(lines) != 2 {
			t.Fatalf("got %d failure log lines, want 2", len(lines))
		}
		if strings.Contains(f.logs.String(), "/down") || strings.Contains(f.logs.String(), "/slow") {
			t.Errorf("a log line carries the request path: %s", f.logs.String())
		}
	})
}

// TestClientGoneCountsAs499: a client that leaves while the backend
// thinks is counted as 499, logged as no backend failure, and on a
// fallback route is neither a fallback (legacy is not asked) nor an
// attempt of modern's that the guard would count.
func TestClientGoneCountsAs499(t *testing.T) {
	for _, tc := range []struct{ mode, backend string }{{"legacy", "legacy"}, {"fallback", "modern"}} {
		t.Run("on a "+tc.mode+" route", func(t *testing.T) {
			arrived := make(chan struct{})
			slow := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
				close(arrived)
				<-r.Context().Done()
			})
			other := newBackend(t, answer(200, `{}`))
			legacyURL, modernURL := slow.URL, other.URL
			if tc.backend == "modern" {
				legacyURL, modernURL = other.URL, slow.URL
			}
			f := newFacade(t, legacyURL, modernURL, "", `
  - {name: slow, match: "GET /slow", mode: `+tc.mode+`}
`)
			ctx, cancel := context.WithCancel(context.Background())
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.URL+"/slow", nil)
			go func() {
				<-arrived
				cancel()
			}()
			if _, err := f.Client().Do(req); err == nil {
				t.Fatal("the request succeeded although the client gave up")
			}
			left := func(backend string) float64 {
				return f.metric(t, "strangler_requests_total", map[string]string{"route": "slow", "backend": backend, "code": "499"})
			}
			testkit.Eventually(t, 10*time.Second, "strangler_requests_total{code=499} at 1", func() bool {
				return left("legacy")+left("modern") == 1
			})
			if left(tc.backend) != 1 {
				t.Errorf("the 499 is counted for the other backend, want %s", tc.backend)
			}
			if lines := f.logLines(t, "backend failed"); len(lines) != 0 {
				t.Errorf("a client leaving was logged as a backend failure: %v", lines)
			}
			if lines := f.logLines(t, "fallback"); len(lines) != 0 || other.hits() != 0 {
				t.Errorf("a client leaving fell back: %d fallback log lines, the other backend called %d times", len(lines), other.hits())
			}
			if w := f.router.Current().byName["slow"].stats.Window(time.Now(), time.Minute); w.ModernAttempts != 0 || w.ModernErrors != 0 {
				t.Errorf("the guard counts %d attempts of modern's, %d failed, want none: the client left", w.ModernAttempts, w.ModernErrors)
			}
		})
	}
}

// TestABackendsOwn499IsNoClientLeaving: the label "499" counted a
// backend's own 499 answer as a client that left, and a fallback route
// then left modern's answer out of its attempts (found by the red team).
// A backend's 499 counts as "4xx", and as an attempt of modern's.
func TestABackendsOwn499IsNoClientLeaving(t *testing.T) {
	answers499 := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(statusClientClosed)
	})
	f := newFacade(t, answers499.URL, answers499.URL, "", `
  - {name: leg, match: "GET /leg", mode: legacy}
  - {name: fb, match: "GET /fb", mode: fallback}
`)
	for _, path := range []string{"/leg", "/fb"} {
		resp, err := f.Client().Get(f.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != statusClientClosed {
			t.Fatalf("GET %s: %d, want the backend's 499 passed on", path, resp.StatusCode)
		}
	}
	for _, labels := range []map[string]string{
		{"route": "leg", "backend": "legacy", "code": "4xx"},
		{"route": "fb", "backend": "modern", "code": "4xx"},
	} {
		if n := f.metric(t, "strangler_requests_total", labels); n != 1 {
			t.Errorf("strangler_requests_total%v = %v, want 1", labels, n)
		}
		labels["code"] = "499"
		if n := f.metric(t, "strangler_requests_total", labels); n != 0 {
			t.Errorf("strangler_requests_total%v = %v, want 0: no client left", labels, n)
		}
	}
	if w := f.router.Current().byName["fb"].stats.Window(time.Now(), time.Minute); w.ModernAttempts != 1 || w.ModernErrors != 0 {
		t.Errorf("modern's attempts on the fallback route: %d, errors %d; want 1 and 0", w.ModernAttempts, w.ModernErrors)
	}
}
