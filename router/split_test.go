package router

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"strangler/config"
)

// side asks the facade which backend serves req: the backends answer
// with their names. It is safe to call from any goroutine.
func (f *facade) side(req *http.Request) (string, error) {
	resp, err := f.Client().Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("got %d %s", resp.StatusCode, body)
	}
	return string(body), nil
}

// sides sends n requests, request(i) for each, over 8 connections and
// returns the backend that served each; an exchange that fails fails the
// test.
func (f *facade) sides(t *testing.T, n int, request func(i int) *http.Request) []string {
	t.Helper()
	got := make([]string, n)
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				side, err := f.side(request(i))
				if err != nil && failed.Add(1) == 1 {
					firstErr.Store(err)
				}
				got[i] = side
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d exchanges failed, the first with %v", n, firstErr.Load())
	}
	return got
}

// splitConfig is a configuration with routes whose backends answer
// within a generous timeout: what is measured here is which side serves,
// and a loaded machine must not turn a request into a 504.
func splitConfig(t *testing.T, legacyURL, modernURL, routes string) *config.Config {
	t.Helper()
	return parseConfig(t, fmt.Sprintf("backends:\n  legacy: {url: %q, timeout: 60s}\n  modern: {url: %q, timeout: 60s}\nroutes:\n%s",
		legacyURL, modernURL, routes))
}

func share(sides []string, backend string) float64 {
	n := 0
	for _, s := range sides {
		if s == backend {
			n++
		}
	}
	return float64(n) / float64(len(sides)) * 100
}

// TestPercentSplit sends 5,000 requests per route through a real facade
// and checks the share modern got (±3 is over four standard deviations of
// a random split's share).
func TestPercentSplit(t *testing.T) {
	// Backends that keep no record: 30,000 requests would make the record
	// the test's main cost.
	legacy := httptest.NewServer(answer(200, "legacy"))
	defer legacy.Close()
	modern := httptest.NewServer(answer(200, "modern"))
	defer modern.Close()
	f := serveConfig(t, splitConfig(t, legacy.URL, modern.URL, `
  - {name: random, match: "GET /random", mode: modern, percent: 30}
  - {name: sticky, match: "GET /sticky", mode: fallback, percent: 30, sticky: "header:X-User-Id"}
  - {name: cookie, match: "GET /cookie", mode: modern, percent: 70, sticky: "cookie:session"}
`))
	const n = 5000
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
			got := share(f.sides(t, n, func(i int) *http.Request {
				req, _ := http.NewRequest(http.MethodGet, f.URL+tc.path, nil)
				tc.decorate(req, i)
				return req
			}), "modern")
			if math.Abs(got-tc.percent) > 3 {
				t.Errorf("modern got %.1f%% of %d requests, want %v%% ± 3", got, n, tc.percent)
			}
		})
	}
	t.Run("a sticky client always lands on the same side", func(t *testing.T) {
		const users, times = 200, 5
		got := f.sides(t, users*times, func(i int) *http.Request {
			req, _ := http.NewRequest(http.MethodGet, f.URL+"/sticky", nil)
			req.Header.Set("X-User-Id", fmt.Sprintf("user-%d", i%users))
			return req
		})
		for i, side := range got {
			if first := got[i%users]; side != first {
				t.Fatalf("user-%d went to %s, then to %s", i%users, first, side)
			}
		}
	})
}

// TestRaisingPercentOnlyMovesClientsToModern ramps a sticky route through
// the percents an operator would use, reloading the facade's table at each
// step as a flip does, and follows 1,000 clients: a client modern served
// stays on modern at every higher percent, and each step moves about the
// share it adds (the clients are fixed, so the shares are too: the
// tolerance is for the hash, not for chance).
func TestRaisingPercentOnlyMovesClientsToModern(t *testing.T) {
	legacy := httptest.NewServer(answer(200, "legacy"))
	defer legacy.Close()
	modern := httptest.NewServer(answer(200, "modern"))
	defer modern.Close()
	routes := func(percent float64) string {
		return fmt.Sprintf(`
  - {name: by-header, match: "GET /h", mode: modern, percent: %v, sticky: "header:X-User-Id"}
  - {name: by-cookie, match: "GET /c", mode: fallback, percent: %v, sticky: "cookie:session"}
`, percent, percent)
	}
	f := serveConfig(t, splitConfig(t, legacy.URL, modern.URL, routes(0)))
	const clients = 1000
	for _, tc := range []struct {
		path  string
		stick func(*http.Request, int)
	}{
		{"/h", func(r *http.Request, i int) { r.Header.Set("X-User-Id", fmt.Sprintf("user-%d", i)) }},
		{"/c", func(r *http.Request, i int) { r.AddCookie(&http.Cookie{Name: "session", Value: fmt.Sprintf("s%d", i)}) }},
	} {
		t.Run("sticky by "+tc.path, func(t *testing.T) {
			previous := 0.0
			before := make([]string, clients)
			for _, percent := range []float64{0, 5, 25, 50, 99.5, 100} {
				table, err := f.router.Build(splitConfig(t, legacy.URL, modern.URL, routes(percent)))
				if err != nil {
					t.Fatal(err)
				}
				f.router.Swap(table)
				now := f.sides(t, clients, func(i int) *http.Request {
					req, _ := http.NewRequest(http.MethodGet, f.URL+tc.path, nil)
					tc.stick(req, i)
					return req
				})
				moved := 0
				for i := range clients {
					switch {
					case before[i] == "modern" && now[i] != "modern":
						t.Fatalf("at %v%% client %d went back to %s; modern served it at %v%%", percent, i, now[i], previous)
					case before[i] != "modern" && now[i] == "modern":
						moved++
					}
				}
				if got, want := float64(moved)/clients*100, percent-previous; math.Abs(got-want) > 4 {
					t.Errorf("from %v%% to %v%%: %.1f%% of the clients moved to modern, want %v%% ± 4", previous, percent, got, want)
				}
				before, previous = now, percent
			}
		})
	}
}

// TestEveryPercentStepOnlyAddsClients checks the split itself at each of
// the 10,000 steps a percent can take (fractions down to 0.01%): whatever
// the step, the clients modern gets include those it had.
func TestEveryPercentStepOnlyAddsClients(t *testing.T) {
	const clients = 64
	req := make([]*http.Request, clients)
	for i := range req {
		req[i] = httptest.NewRequest(http.MethodGet, "/h", nil)
		req[i].Header.Set("X-User-Id", fmt.Sprintf("user-%d", i))
	}
	onModern := make([]bool, clients)
	for basis := 0; basis <= fullPercent; basis++ {
		p := config.Percent(float64(basis) / 100)
		rt := newRoute(&config.Config{}, &config.Route{Name: "r", Percent: &p, Sticky: config.Sticky{Header: "X-User-Id"}})
		for i, r := range req {
			now := rt.toModern(r)
			if onModern[i] && !now {
				t.Fatalf("at %v%% client %d left modern, which served it at a lower percent", p, i)
			}
			onModern[i] = now
		}
	}
}

// TestAFractionalPercentCountsEveryBasisPoint: percent 0.29 is 28.999…
// in binary floating point; taken as 28 basis points, the client in the
// 29th bucket stayed on legacy. Rounded, the share is what was configured.
func TestAFractionalPercentCountsEveryBasisPoint(t *testing.T) {
	legacy := httptest.NewServer(answer(200, "legacy"))
	defer legacy.Close()
	modern := httptest.NewServer(answer(200, "modern"))
	defer modern.Close()
	f := serveConfig(t, splitConfig(t, legacy.URL, modern.URL, `
  - {name: sticky, match: "GET /sticky", mode: fallback, percent: 0.29, sticky: "header:X-User-Id"}
`))
	user := ""
	for i := 0; user == ""; i++ {
		if k := fmt.Sprintf("user-%d", i); bucket("sticky", k) == 28 {
			user = k
		}
	}
	req, _ := http.NewRequest(http.MethodGet, f.URL+"/sticky", nil)
	req.Header.Set("X-User-Id", user)
	if side, err := f.side(req); err != nil || side != "modern" {
		t.Errorf("the client in bucket 28 of 0…9999 went to %q (%v), want modern at 0.29%%", side, err)
	}
}
