package router

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config/configfile"
	"strangler/internal/testkit"
)

// The request counters keep a route's series handles with the route: the
// counts must still land on the series of the status each request got,
// however many statuses a route answers with, and the next table's routes
// must count on in the same series.
func TestRequestCountsLandOnTheirStatusSeries(t *testing.T) {
	legacy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, _ := strconv.Atoi(r.URL.Query().Get("code"))
		w.WriteHeader(code)
	}))
	defer legacy.Close()
	cfg, err := configfile.Parse("series.yaml", []byte(fmt.Sprintf(
		"backends:\n  legacy: {url: %q}\n  modern: {url: %q}\nroutes:\n  - {name: statuses, match: 'GET /statuses', mode: legacy}\n",
		legacy.URL, legacy.URL)), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	r := New(Deps{Metrics: NewMetrics(reg), Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	// More statuses than a route keeps handles for, in turn, so that each
	// takes the place of another; then a new table, as a reload makes.
	codes := []int{200, 201, 204, 404, 500, 503, 302}
	want := map[int]float64{}
	for table := range 2 {
		tbl, err := r.Build(cfg)
		if err != nil {
			t.Fatal(err)
		}
		r.Swap(tbl)
		for round := range 3 {
			for k, code := range codes {
				if (round+k+table)%2 == 0 {
					continue // an order of statuses unlike the last round's
				}
				w := httptest.NewRecorder()
				r.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/statuses?code="+strconv.Itoa(code), nil))
				if w.Code != code {
					t.Fatalf("status %d, want %d", w.Code, code)
				}
				want[code]++
			}
		}
	}
	m := testkit.Gather(t, reg)
	for code, n := range want {
		if got := m.Value("strangler_requests_total", "route", "statuses", "backend", "legacy", "code", strconv.Itoa(code)); got != n {
			t.Errorf("strangler_requests_total{code=%q} = %v, want %v", strconv.Itoa(code), got, n)
		}
	}
	var total float64
	for _, n := range want {
		total += n
	}
	if got := m.Sum("strangler_request_duration_seconds", "route", "statuses", "backend", "legacy"); got != total {
		t.Errorf("strangler_request_duration_seconds count = %v, want %v", got, total)
	}
}
