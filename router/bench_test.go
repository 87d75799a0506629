package router

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config/configfile"
	"strangler/domain"
)

// BenchmarkEffectiveMode measures what the request path pays to learn a
// request's route and its effective mode: an atomic load of the current
// table, the edge's checks and the canonical path, and a lookup in the
// table; no lock, no allocation.
func BenchmarkEffectiveMode(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprintf("%d routes", n), func(b *testing.B) {
			r := New(Deps{Metrics: NewMetrics(prometheus.NewRegistry()), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			var yaml strings.Builder
			yaml.WriteString("backends:\n  legacy: {url: 'http://legacy'}\n  modern: {url: 'http://modern'}\nroutes:\n")
			for i := range n {
				fmt.Fprintf(&yaml, "  - {name: r%d, match: 'GET /r%d/items/{id}', mode: fallback}\n", i, i)
			}
			cfg, err := configfile.Parse("bench.yaml", []byte(yaml.String()), configfile.Env{Getenv: func(string) string { return "" }})
			if err != nil {
				b.Fatal(err)
			}
			t, err := r.Build(cfg)
			if err != nil {
				b.Fatal(err)
			}
			r.Swap(t)
			target := fmt.Sprintf("/r%d/items/42", n/2)
			req := &http.Request{Method: http.MethodGet, RequestURI: target, URL: &url.URL{Path: target}, Header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				_, rt, _, err := r.table.Load().admit(req)
				if err != nil || rt.mode != domain.ModeFallback {
					b.Fatal("wrong route")
				}
			}
		})
	}
}
