package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests send requests as an attacker would, over raw connections,
// to a facade started by run, in front of backends that record exactly
// what reaches them.

// edgeBackend records every request that reaches it, by the X-Case header
// the tests give each request, and whether it could read the body whole.
type edgeBackend struct {
	srv  *http.Server
	addr string
	mu   sync.Mutex
	got  map[string][]edgeReceived // by X-Case
	busy int                       // requests being read
}

type edgeReceived struct {
	URI      string // the request-target as received
	Header   http.Header
	Body     string
	Complete bool
	Trailer  http.Header // the trailer fields that came after the body
}

func newEdgeBackend(t *testing.T) *edgeBackend {
	t.Helper()
	b := &edgeBackend{got: map[string][]edgeReceived{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.addr = ln.Addr().String()
	b.srv = &http.Server{Handler: b}
	go b.srv.Serve(ln)
	t.Cleanup(func() { b.srv.Close() })
	return b
}

func (b *edgeBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.busy++
	b.mu.Unlock()
	body, err := io.ReadAll(r.Body)
	b.mu.Lock()
	b.busy--
	c := r.Header.Get("X-Case")
	b.got[c] = append(b.got[c], edgeReceived{r.RequestURI, r.Header.Clone(), string(body), err == nil, r.Trailer.Clone()})
	b.mu.Unlock()
	if r.Method == http.MethodPost {
		w.WriteHeader(http.StatusCreated)
	}
	io.WriteString(w, "ok")
}

// received returns what reached the backend for one case, once it is not
// reading any request.
func (b *edgeBackend) received(t *testing.T, c string) []edgeReceived {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		busy, got := b.busy, slices.Clone(b.got[c])
		b.mu.Unlock()
		if busy == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backend is still reading %d requests", busy)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startEdgeFacade runs a facade with legacy and modern (base path /api) in
// front of two edge backends; extra is more top-level YAML.
func startEdgeFacade(t *testing.T, extra, routes string) (r *running, legacy, modern *edgeBackend) {
	t.Helper()
	legacy, modern = newEdgeBackend(t), newEdgeBackend(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "strangler.yaml")
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
  tokens: [{name: test, token: %q, role: viewer}]
backends:
  legacy: { url: "http://%s", timeout: 5s }
  modern: { url: "http://%s/api", timeout: 5s }
store: "sqlite:%s"
shutdown: { delay: 0s, grace: 5s }
%s
routes:
%s`, e2eAdminToken, legacy.addr, modern.addr, filepath.Join(dir, "strangler.db"), extra, routes)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return startRun(t, "serve", "--config", path), legacy, modern
}

// rawHTTP sends one raw request, with X-Case and Connection: close added
// to its head, and reads the response.
func rawHTTP(t *testing.T, addr, c, method, target, header, body string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: facade\r\nX-Case: %s\r\nConnection: close\r\n%s\r\n%s", method, target, c, header, body)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, string(out)
}

// requestsCounted is strangler_requests_total for route, backend and code.
func requestsCounted(t *testing.T, admin, route, backend string, code int) string {
	t.Helper()
	return metricValue(t, admin, fmt.Sprintf(`strangler_requests_total{backend=%q,code="%d",route=%q}`, backend, code, route))
}

// journaled lists the ids and resources of the writes journaled for route.
func journaled(t *testing.T, admin, route string) map[string]string {
	t.Helper()
	code, body := adminDo(t, admin, "GET", "/admin/repairs?limit=1000&route="+route, nil)
	if code != http.StatusOK {
		t.Fatalf("GET /admin/repairs: %d %s", code, body)
	}
	var list struct {
		Repairs []struct{ ID, Resource string }
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("repairs list: %v: %s", err, body)
	}
	out := map[string]string{}
	for _, r := range list.Repairs {
		out[r.ID] = r.Resource
	}
	return out
}

// resourceViews checks that writes to one canonical resource are
// journaled as one resource. Listings show a resource with its path
// parameters hashed (never an identifier in clear), so the check is that
// every spelling of a resource shows as the first one did, and that the
// view has the resource's shape: want is the canonical path, with "{id}"
// where a hashed parameter must show.
type resourceViews map[string]string

func (v resourceViews) check(t *testing.T, got, want string) {
	t.Helper()
	prefix, _, hashed := strings.Cut(want, "{id}")
	switch {
	case hashed && !strings.HasPrefix(got, prefix+"{id:h:"):
		t.Errorf("journaled %q, want %s with its parameter hashed", got, want)
	case !hashed && got != want:
		t.Errorf("journaled %q, want %q", got, want)
	case v[want] != "" && v[want] != got:
		t.Errorf("journaled %q, but another spelling of %s was journaled as %q", got, want, v[want])
	}
	v[want] = got
}

// spellingRoutes are a {param} route, /* routes and dual-write routes, all
// moved off legacy, so that a spelling that slips past one reaches legacy.
const spellingRoutes = `
  - {name: patient, match: "GET /patients/{id}", mode: modern}
  - {name: reports, match: "/reports/*", mode: modern}
  - {name: docs, match: "GET /docs/{name}", mode: modern, allow_encoded_slash: true}
  - {name: files, match: "/files/*", mode: modern, allow_encoded_slash: true}
  - {name: create-record, match: "POST /records", mode: dual-write}
  - {name: put-record, match: "PUT /records/{id}", mode: dual-write}
`

// TestEverySpellingOfAPathIsOneRequest sends the spellings an attacker
// would try: each gets the decision its canonical path gets, reaches the
// backend at exactly that path (behind modern's base path /api), and a
// write is journaled under its canonical resource; what cannot be
// canonicalized is refused with 400 and reaches no backend.
func TestEverySpellingOfAPathIsOneRequest(t *testing.T) {
	r, legacy, modern := startEdgeFacade(t, "", spellingRoutes)
	views := resourceViews{}
	for i, c := range []struct {
		method, target string
		status         int
		route, backend string // the metrics labels
		path           string // what the backend received
		resource       string // the journaled resource, for writes (see resourceViews)
		netHTTP        bool   // refused by Go's HTTP server before the facade's handler, in the facade's JSON
	}{
		// A {param} route.
		{"GET", "/patients/42", 200, "patient", "modern", "/api/patients/42", "", false},
		{"GET", "/patients/%34%32", 200, "patient", "modern", "/api/patients/42", "", false},
		{"GET", "/%70atients/42", 200, "patient", "modern", "/api/patients/42", "", false},
		{"GET", "/patients/42/", 200, "patient", "modern", "/api/patients/42/", "", false},
		{"GET", "/patients//42", 200, "patient", "modern", "/api/patients/42", "", false},
		{"GET", "//patients/42", 200, "patient", "modern", "/api/patients/42", "", false},
		{"GET", "/patients/./42", 200, "patient", "modern", "/api/patients/42", "", false},
		{"GET", "/patients/%2e/42", 200, "patient", "modern", "/api/patients/42", "", false},
		{"GET", "/elsewhere/../patients/42", 200, "patient", "modern", "/api/patients/42", "", false},
		{"GET", "/patients/caf%c3%a9", 200, "patient", "modern", "/api/patients/caf%C3%A9", "", false},
		{"GET", "/patients/café", 200, "patient", "modern", "/api/patients/caf%C3%A9", "", false},
		{"GET", "/patients/42?q=%zz;x&y=/../", 200, "patient", "modern", "/api/patients/42?q=%zz;x&y=/../", "", false},
		{"GET", "http://evil.example/patients/%34%32", 200, "patient", "modern", "/api/patients/42", "", false},
		{"GET", "/patients/..%2fadmin", 400, "default", "none", "", "", false},
		{"GET", "/patients/a%2Fb", 400, "patient", "none", "", "", false},
		{"GET", "/patients/%00", 400, "default", "none", "", "", false},
		{"GET", "/patients/%5c..%5cadmin", 400, "default", "none", "", "", false},
		{"GET", `/patients/a\b`, 400, "default", "none", "", "", false},
		{"GET", "/patients/..;/admin", 400, "default", "none", "", "", false},
		{"GET", "/../patients/42", 400, "default", "none", "", "", false},
		{"GET", "/patients/%zz", 400, "", "", "", "", true},
		{"GET", "/patients/\x01", 400, "", "", "", "", true},
		// /* routes.
		{"GET", "/reports/2024/q1", 200, "reports", "modern", "/api/reports/2024/q1", "", false},
		{"GET", "/reports/a/../b", 200, "reports", "modern", "/api/reports/b", "", false},
		{"GET", "/reports", 200, "reports", "modern", "/api/reports", "", false},
		{"GET", "/reports/", 200, "reports", "modern", "/api/reports/", "", false},
		{"GET", "/reports/../admin", 200, "default", "legacy", "/admin", "", false},
		{"GET", "/reports//..//admin", 200, "default", "legacy", "/admin", "", false},
		{"GET", "/reports/%2e%2e/%2e%2e/admin", 400, "default", "none", "", "", false},
		{"GET", "/reports/a%2Fb", 400, "reports", "none", "", "", false},
		// allow_encoded_slash keeps %2F inside a parameter, never beside dots.
		{"GET", "/docs/a%2fb", 200, "docs", "modern", "/api/docs/a%2Fb", "", false},
		{"GET", "/files/a%2Fb/c", 200, "files", "modern", "/api/files/a%2Fb/c", "", false},
		{"GET", "/docs/..%2Fsecret", 400, "default", "none", "", "", false},
		{"GET", "/docs%2Fa", 400, "default", "none", "", "", false},
		// Dual-write routes: the primary (legacy) gets the path, the journal
		// the canonical resource (a create that names nothing shows as its
		// collection).
		{"POST", "/records", 201, "create-record", "legacy", "/records", "/records", false},
		{"POST", "/%72ecords", 201, "create-record", "legacy", "/records", "/records", false},
		{"POST", "/records/", 201, "create-record", "legacy", "/records/", "/records", false},
		{"POST", "/records%2f", 400, "default", "none", "", "", false},
		{"PUT", "/records/4", 200, "put-record", "legacy", "/records/4", "/records/{id}", false},
		{"PUT", "/records/%34", 200, "put-record", "legacy", "/records/4", "/records/{id}", false},
		{"PUT", "/records/4/", 200, "put-record", "legacy", "/records/4/", "/records/{id}", false},
		{"PUT", "/records//4", 200, "put-record", "legacy", "/records/4", "/records/{id}", false},
		{"PUT", "/records/./4", 200, "put-record", "legacy", "/records/4", "/records/{id}", false},
		{"PUT", "/records/%00", 400, "default", "none", "", "", false},
	} {
		id := fmt.Sprint(i)
		t.Run(c.method+" "+c.target, func(t *testing.T) {
			counted := func() string { return requestsCounted(t, r.admin, c.route, c.backend, c.status) }
			var before string
			if !c.netHTTP {
				before = counted()
			}
			var journal map[string]string
			if c.resource != "" || c.method != "GET" {
				journal = journaled(t, r.admin, strings.TrimPrefix(c.route, "default"))
			}
			body := ""
			header := ""
			if c.method != "GET" {
				body = `{"v":1}`
				header = fmt.Sprintf("Content-Length: %d\r\n", len(body))
			}
			resp, out := rawHTTP(t, r.public, id, c.method, c.target, header, body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, out, c.status)
			}
			// Only the primary answers before the client does; a dual
			// write's secondary (modern) gets it afterwards.
			got := legacy.received(t, id)
			if c.backend == "modern" {
				got = modern.received(t, id)
			}
			switch {
			case c.backend == "none" || c.netHTTP:
				if l, m := legacy.received(t, id), modern.received(t, id); len(l)+len(m) > 0 {
					t.Errorf("refused, yet legacy received %+v and modern %+v", l, m)
				}
			case len(got) != 1:
				t.Errorf("%s received %d requests, want 1", c.backend, len(got))
			case got[0].URI != c.path:
				t.Errorf("%s received %q, want %q", c.backend, got[0].URI, c.path)
			}
			if c.status >= 400 && !strings.Contains(out, `"error":`) {
				t.Errorf("body %q, want a JSON error", out)
			}
			if c.netHTTP {
				return // counted in strangler_refused_total{route=""} (TestRequestsGosServerCannotReadAreJSONRefusals)
			}
			if after := counted(); after == before || after == "" {
				t.Errorf("strangler_requests_total{route=%q,backend=%q,code=\"%d\"} = %q, was %q: not counted there", c.route, c.backend, c.status, after, before)
			}
			if journal == nil {
				return
			}
			var added []string
			for id, res := range journaled(t, r.admin, strings.TrimPrefix(c.route, "default")) {
				if _, ok := journal[id]; !ok {
					added = append(added, res)
				}
			}
			switch {
			case c.resource == "" && len(added) > 0:
				t.Errorf("journaled %q for a refused write", added)
			case c.resource != "" && len(added) != 1:
				t.Errorf("journaled %q, want one write to %s", added, c.resource)
			case c.resource != "":
				views.check(t, added[0], c.resource)
			}
		})
	}
}
