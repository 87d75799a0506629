package router

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// TestPercentSplit sends 10,000 requests through a real facade and checks
// the share modern got.
func TestPercentSplit(t *testing.T) {
	// Backends that keep no record: 30,000 requests would make the record
	// the test's main cost.
	legacy := httptest.NewServer(answer(200, "legacy"))
	defer legacy.Close()
	modern := httptest.NewServer(answer(200, "modern"))
	defer modern.Close()
	f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: random, match: "GET /random", mode: modern, percent: 30}
  - {name: sticky, match: "GET /sticky", mode: fallback, percent: 30, sticky: "header:X-User-Id"}
  - {name: cookie, match: "GET /cookie", mode: modern, percent: 70, sticky: "cookie:session"}
`)
	const n = 10000
	share := func(t *testing.T, path string, decorate func(*http.Request, int)) float64 {
		t.Helper()
		var toModern atomic.Int64
		var wg sync.WaitGroup
		next := make(chan int)
		for range 8 {
			wg.Go(func() {
				for i := range next {
					req, _ := http.NewRequest(http.MethodGet, f.URL+path, nil)
					decorate(req, i)
					if _, body := f.do(t, req); body == "modern" {
						toModern.Add(1)
					}
				}
			})
		}
		for i := range n {
			next <- i
		}
		close(next)
		wg.Wait()
		return float64(toModern.Load()) / n * 100
	}
	for _, tc := range []struct {
		path     string
		percent  float64
		decorate func(*http.Request, int)
	}{
		{"/random", 30, func(*http.Request, int) {}},
		{"/sticky", 30, func(r *http.Request, i int) { r.Header.Set("X-User-Id", fmt.Sprintf("user-%d", i)) }},
		{"/cookie", 70, func(r *http.Request, i int) { r.AddCookie(&http.Cookie{Name: "session", Value: fmt.Sprintf("s%d", i)}) }},
	} {
		t.Run(fmt.Sprintf("%s sends %v%% to modern", tc.path, tc.percent), func(t *testing.T) {
			if got := share(t, tc.path, tc.decorate); math.Abs(got-tc.percent) > 3 {
				t.Errorf("modern got %.1f%% of %d requests, want %v%% ± 3", got, n, tc.percent)
			}
		})
	}
	t.Run("a sticky client always lands on the same side", func(t *testing.T) {
		for i := range 200 {
			user := fmt.Sprintf("user-%d", i)
			first := ""
			for range 5 {
				req, _ := http.NewRequest(http.MethodGet, f.URL+"/sticky", nil)
				req.Header.Set("X-User-Id", user)
				_, body := f.do(t, req)
				if first == "" {
					first = body
				} else if body != first {
					t.Fatalf("%s went to %s, then to %s", user, first, body)
				}
			}
		}
	})
}

func TestRaisingPercentOnlyMovesClientsToModern(t *testing.T) {
	lower := &route{name: "r", percent: 2000}
	higher := &route{name: "r", percent: 5000}
	for i := range 5000 {
		key := fmt.Sprintf("user-%d", i)
		if bucket(lower.name, key) < lower.percent && bucket(higher.name, key) >= higher.percent {
			t.Fatalf("%s was in modern at 20%% but not at 50%%", key)
		}
	}
}
