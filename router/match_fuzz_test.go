package router

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config"
	"strangler/domain"
)

// FuzzMatch routes a fuzzed path through a facade whose only route, built
// from a fuzzed pattern, is `modern` (modern has a base path), with legacy
// as the default, and checks what the backends receive:
//   - a request that is not refused reaches a backend at exactly its
//     canonical path (behind modern's base path), with the query as sent;
//   - the path forwarded, sent again, reaches the same backend at the same
//     path: the route chosen for a path is the route chosen for the path
//     that is forwarded;
//   - the same path spelled plainly (unreserved characters decoded, dot
//     segments removed and slashes merged by path.Clean: what a
//     normalising backend serves) reaches the same backend: no spelling of
//     a `modern` route's path reaches legacy, and no spelling of another
//     path reaches modern;
//   - a literal or wildcard pattern matches the paths it spells.
func FuzzMatch(f *testing.F) {
	for _, seed := range [][2]string{
		{"/patients/{id}", "/patients/42"},
		{"/patients/{id:[0-9]+}/photos", "/patients/7/photos"},
		{"/static/*", "/static/css/a.css"},
		{"/files/{name}.json", "/files/report.json"},
		{"/a/{x:[a-z]{2}}", "/a/bc"},
		{"/", "/"},
		{"/x/y", "/x/y/"},
		{"/records", "/%72ecords"},
		{"/records", "/records/"},
		{"/records", "/records%2f"},
		{"/records/{id}", "/records/%34"},
		{"/reports/*", "/reports/%2e%2e/%2e%2e/admin"},
		{"/patients/{id}", "/patients/..%2fadmin"},
		{"/reports/*", "/reports/../admin"},
		{"/reports/*", "/reports//..//admin"},
		{"/patients/{id}", `/patients/%5c..%5cadmin`},
		{"/patients/{id}", "/patients/./1"},
		{"/patients/{id}", "/patients//1"},
		{"/patients/{id}", "/patients/%00"},
		{"/patients/{id}", "/patients/..;/admin"},
		{"/admin", "/reports/../admin"},
		{"/caf%C3%A9", "/café"},
	} {
		f.Add(seed[0], seed[1])
	}
	backend := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(seen{Backend: name, URI: r.RequestURI})
		}))
	}
	legacy, modern := backend("legacy"), backend("modern")
	defer legacy.Close()
	defer modern.Close()
	r := New(Deps{Metrics: NewMetrics(prometheus.NewRegistry()), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	f.Fuzz(func(t *testing.T, pattern, target string) {
		var m config.Match
		if m.UnmarshalText([]byte("GET "+pattern)) != nil {
			return
		}
		cfg := &config.Config{
			Backends: config.Backends{
				Legacy: config.Upstream{URL: config.URL{URL: mustParse(t, legacy.URL)}, Timeout: config.Duration(5 * time.Second)},
				Modern: config.Upstream{URL: config.URL{URL: mustParse(t, modern.URL+"/base")}, Timeout: config.Duration(5 * time.Second)},
			},
			Default: domain.Legacy,
			Routes:  []config.Route{{Name: "r", Match: m, Mode: domain.ModeModern}},
		}
		table, err := r.Build(cfg)
		if err != nil {
			t.Fatalf("config accepted %q but the router refused it: %v", pattern, err)
		}
		r.Swap(table)
		send := func(p string) (seen, bool) {
			req, err := http.NewRequest(http.MethodGet, "http://facade"+p+"?q=%zz;x", nil)
			if err != nil || strings.ContainsAny(p, "?#") || !strings.HasPrefix(p, "/") {
				return seen{}, false // net/http would refuse it, or it is no path
			}
			req.RequestURI = p + "?q=%zz;x"
			req.RemoteAddr = "192.0.2.1:1234"
			w := httptest.NewRecorder()
			r.ServeHTTP(w, req)
			if w.Code == http.StatusBadRequest {
				return seen{}, false
			}
			var s seen
			if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil {
				t.Fatalf("%q: status %d, body %q", p, w.Code, w.Body)
			}
			if s.Backend == "modern" {
				var ok bool
				if s.URI, ok = strings.CutPrefix(s.URI, "/base"); !ok {
					t.Fatalf("%q reached modern at %q, without its base path", p, s.URI)
				}
			}
			path, query, _ := strings.Cut(s.URI, "?")
			if query != "q=%zz;x" {
				t.Fatalf("%q reached %s with the query %q, want it as sent", p, s.Backend, query)
			}
			s.URI = path
			return s, true
		}
		first, ok := send(target)
		if !ok {
			return
		}
		again, ok := send(first.URI)
		if !ok || again != first {
			t.Fatalf("%q reached %s at %q, but that path reached %+v (refused: %v)", target, first.Backend, first.URI, again, !ok)
		}
		if plain := plainSpelling(target); plain != "" {
			if other, ok := send(plain); ok && other.Backend != first.Backend {
				t.Fatalf("%q reached %s, but its plain spelling %q reached %s", target, first.Backend, plain, other.Backend)
			}
		}
		if !strings.ContainsAny(m.Path, "{*") {
			if got, _ := send(m.Path); got.Backend != "modern" {
				t.Errorf("literal pattern %q does not match itself", m.Path)
			}
		}
		if prefix, ok := strings.CutSuffix(m.Path, "/*"); ok && !strings.Contains(prefix, "{") {
			if got, _ := send(prefix + "/anything/below"); got.Backend != "modern" {
				t.Errorf("wildcard pattern %q does not match a path below it", m.Path)
			}
		}
	})
}

// seen is what a backend of FuzzMatch received.
type seen struct {
	Backend, URI string
}

// plainSpelling is p as a normalising backend reads it, written plainly:
// percent-encoded unreserved characters decoded, other percent-encodings
// in upper-case hex, then path.Clean (dot segments, runs of slashes, the
// trailing slash). It is written without the facade's code, so that the
// two can be compared; "" if p has an invalid percent-encoding.
func plainSpelling(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			b.WriteByte(p[i])
			continue
		}
		if i+2 >= len(p) {
			return ""
		}
		v, err := url.PathUnescape(p[i : i+3])
		if err != nil {
			return ""
		}
		if c := v[0]; 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			b.WriteString(strings.ToUpper(p[i : i+3]))
		}
		i += 2
	}
	return path.Clean(b.String())
}

func mustParse(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
