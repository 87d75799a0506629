package router

import (
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config"
)

// FuzzMatch checks that every pattern config accepts can be routed, that
// matching never panics, and that literal and wildcard patterns match the
// paths they spell.
func FuzzMatch(f *testing.F) {
	for _, seed := range [][2]string{
		{"/patients/{id}", "/patients/42"},
		{"/patients/{id:[0-9]+}/photos", "/patients/7/photos"},
		{"/static/*", "/static/css/a.css"},
		{"/files/{name}.json", "/files/report.json"},
		{"/a/{x:[a-z]{2}}", "/a/bc"},
		{"/", "/"},
		{"/x/y", "/x/y/"},
		{"/%2F/{id}", "/%2F/1"},
	} {
		f.Add(seed[0], seed[1])
	}
	r := New(Deps{Metrics: NewMetrics(prometheus.NewRegistry()), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	f.Fuzz(func(t *testing.T, pattern, path string) {
		var m config.Match
		if m.UnmarshalText([]byte("GET "+pattern)) != nil {
			return
		}
		cfg := &config.Config{
			Backends: config.Backends{
				Legacy: config.Upstream{URL: config.URL{URL: &url.URL{Scheme: "http", Host: "legacy"}}},
				Modern: config.Upstream{URL: config.URL{URL: &url.URL{Scheme: "http", Host: "modern"}}},
			},
			Routes: []config.Route{{Name: "r", Match: m, Mode: config.ModeModern}},
		}
		table, err := r.Build(cfg)
		if err != nil {
			t.Fatalf("config accepted %q but the router refused it: %v", pattern, err)
		}
		matched := func(p string) bool {
			req := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: p}}
			rt, _ := table.match(req)
			return rt.name == "r"
		}
		matched(path)
		pattern = m.Path
		if !strings.ContainsAny(pattern, "{*") && !matched(pattern) {
			t.Errorf("literal pattern %q does not match itself", pattern)
		}
		if prefix, ok := strings.CutSuffix(pattern, "/*"); ok && !strings.Contains(prefix, "{") && !matched(prefix+"/anything/below") {
			t.Errorf("wildcard pattern %q does not match a path below it", pattern)
		}
	})
}
