package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// These tests continue the red team's attacks (redteam_e2e_test.go) from
// its thirteenth round: the public listener as an unlucky client sees it.

// primaryIDs is a dual-write secondary that records, by X-Case, the
// X-Strangler-Primary-Id each delivery carried ("" for none).
type primaryIDs struct {
	mu  sync.Mutex
	got map[string][]string
}

func (p *primaryIDs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	p.mu.Lock()
	p.got[r.Header.Get("X-Case")] = append(p.got[r.Header.Get("X-Case")], r.Header.Get("X-Strangler-Primary-Id"))
	p.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

func (p *primaryIDs) of(c string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got[c]...)
}

// TestThePrimaryIDIsReadFromTheAnswerTheClientReads: a create's answer
// carries the new id as its client reads it, and the secondary must get
// that id (X-Strangler-Primary-Id) to keep it. Clients ask for compressed
// answers (browsers, OkHttp and Go's client send Accept-Encoding: gzip on
// their own) and backends grant it (Rails' Rack::Deflater, Express's
// compression, nginx's gzip): the facade passes the answer on compressed
// and must read the id from it uncompressed. A PHP file saved with a UTF-8
// byte order mark writes one before every answer; browsers' fetch, .NET
// and Java read the JSON after it (RFC 8259 section 8.1 lets a parser
// ignore it), so the id is there too.
//
// Found by the red team: each of these creates reached the secondary
// without the primary's id, which then gave the record an id of its own.
func TestThePrimaryIDIsReadFromTheAnswerTheClientReads(t *testing.T) {
	gz := func(s string) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		io.WriteString(w, s)
		w.Close()
		return b.Bytes()
	}
	legacy := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		switch r.Header.Get("X-Case") {
		case "gzip":
			w.Header().Set("Content-Encoding", "gzip")
			w.WriteHeader(http.StatusCreated)
			w.Write(gz(`{"id":"L-1","name":"x"}`))
		case "x-gzip":
			w.Header().Set("Content-Encoding", "x-gzip")
			w.WriteHeader(http.StatusCreated)
			w.Write(gz(`{"id":"L-2"}`))
		case "bom":
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, "\uFEFF{\"id\":\"L-3\"}")
		case "plain":
			w.WriteHeader(http.StatusCreated)
			io.WriteString(w, `{"id":"L-4"}`)
		}
	})
	modern := &primaryIDs{got: map[string][]string{}}
	secondary := httptestServer(t, modern.ServeHTTP)
	dir := t.TempDir()
	r := startRun(t, "serve", "--config", writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL, modern: secondary.URL}))

	for c, want := range map[string]string{"gzip": "L-1", "x-gzip": "L-2", "bom": "L-3", "plain": "L-4"} {
		t.Run(c, func(t *testing.T) {
			req, _ := http.NewRequest("POST", "http://"+r.public+"/items", bytes.NewReader([]byte(`{"name":"x"}`)))
			req.Header.Set("X-Case", c)
			req.Header.Set("Content-Type", "application/json")
			// What Go's client, a browser or OkHttp sends on its own.
			req.Header.Set("Accept-Encoding", "gzip")
			resp, err := e2eClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("%d; want the primary's 201", resp.StatusCode)
			}
			// The client gets the answer as the primary sent it.
			if resp.Header.Get("Content-Encoding") != "" {
				z, err := gzip.NewReader(bytes.NewReader(got))
				if err != nil {
					t.Fatalf("the client's answer is no longer gzip: %v", err)
				}
				got, _ = io.ReadAll(z)
			}
			if !bytes.Contains(got, []byte(`"id":"`+want+`"`)) {
				t.Errorf("the client got %q; want the primary's answer with id %s", got, want)
			}
			testkit.Eventually(t, 20*time.Second, "the write reaching the secondary", func() bool { return len(modern.of(c)) > 0 })
			if got := modern.of(c); len(got) != 1 || got[0] != want {
				t.Errorf("the secondary got X-Strangler-Primary-Id %q; want [%s] once", got, want)
			}
		})
	}
}

// overridingStore is a backend that reads a method override as Laravel
// and Symfony do (X-HTTP-Method-Override, or a _method field of the query
// or of a form body, on a POST), and keeps one value per path: PUT sets
// it, DELETE removes it. refuse, when set, answers a write 503 instead (a
// secondary that is briefly down).
type overridingStore struct {
	mu     sync.Mutex
	values map[string]string
	seen   []string // the writes applied, as "METHOD path"
	refuse func(method, path string) bool
}

func (s *overridingStore) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	method := r.Method
	if method == http.MethodPost {
		r.ParseForm()
		if o := r.Header.Get("X-HTTP-Method-Override"); o != "" {
			method = o
		} else if o := r.Form.Get("_method"); o != "" {
			method = o
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse != nil && s.refuse(method, r.URL.Path) {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	switch method {
	case http.MethodPut:
		s.values[r.URL.Path] = "put"
	case http.MethodDelete:
		delete(s.values, r.URL.Path)
	}
	s.seen = append(s.seen, method+" "+r.URL.Path)
	w.WriteHeader(http.StatusNoContent)
}

func (s *overridingStore) state() (map[string]string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.values), slices.Clone(s.seen)
}

// TestAWriteStandingForAnotherMethodKeepsItsPlaceInTheOrder: on a
// dual-write route that serves every method, a POST standing for a DELETE
// (X-HTTP-Method-Override, or _method in its query or form body: HTML
// forms cannot send DELETE, so Laravel and Rails apps send one so) is a
// DELETE to the backends, and must reach the secondary after the earlier
// PUT to the same path, as a DELETE would.
//
// Found by the red team: taken for a create, it waited behind nothing.
// With the PUT's delivery retried (the secondary briefly down), the
// secondary got the DELETE first and then the PUT, and kept a record the
// primary had deleted.
func TestAWriteStandingForAnotherMethodKeepsItsPlaceInTheOrder(t *testing.T) {
	primary := &overridingStore{values: map[string]string{}}
	// The secondary refuses a path's PUTs until it got the path's DELETE,
	// or for a second, whichever comes first: a facade that keeps the
	// order has the DELETE wait behind the PUT's retries.
	secondary := &overridingStore{values: map[string]string{}}
	firstPut := map[string]time.Time{}
	secondary.refuse = func(method, path string) bool {
		if method != http.MethodPut {
			return false
		}
		if firstPut[path].IsZero() {
			firstPut[path] = time.Now()
		}
		return !slices.Contains(secondary.seen, "DELETE "+path) && time.Since(firstPut[path]) < time.Second
	}
	legacy, modern := httptestServer(t, primary.ServeHTTP), httptestServer(t, secondary.ServeHTTP)
	dir := t.TempDir()
	r := startRun(t, "serve", "--config", writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL, modern: modern.URL,
		routes: `
  - {name: items, match: "/items/{id}", mode: dual-write}
`}))

	form := map[string]string{"Content-Type": "application/x-www-form-urlencoded"}
	for _, c := range []struct {
		name, query, body string
		header            map[string]string
	}{
		{"X-HTTP-Method-Override", "", "name=x", map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-HTTP-Method-Override": "DELETE"}},
		{"_method in the query", "?_method=DELETE", "name=x", form},
		{"_method in a form body", "", "name=x&_method=DELETE", form},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := "/items/" + strings.ReplaceAll(c.name, " ", "-")
			if code, out, err := sendRequest("PUT", "http://"+r.public+path, "name=x", form); err != nil || code != http.StatusNoContent {
				t.Fatalf("PUT: %d %s %v; want the primary's 204", code, out, err)
			}
			if code, out, err := sendRequest("POST", "http://"+r.public+path+c.query, c.body, c.header); err != nil || code != http.StatusNoContent {
				t.Fatalf("POST standing for DELETE: %d %s %v; want the primary's 204", code, out, err)
			}
			testkit.Eventually(t, 20*time.Second, "both writes reaching the secondary", func() bool {
				_, seen := secondary.state()
				return slices.Contains(seen, "DELETE "+path) && slices.Contains(seen, "PUT "+path)
			})
			want, _ := primary.state()
			got, seen := secondary.state()
			if got[path] != want[path] {
				t.Errorf("the secondary holds %q at %s after applying %v; want the primary's %q", got[path], path, seen, want[path])
			}
		})
	}
}

// TestAKeyReusedForAnotherOverriddenMethodIsRefused: the same
// Idempotency-Key with another method answers 422 and reaches no backend;
// a POST standing for a DELETE and one standing for a PUT
// (X-HTTP-Method-Override) are two methods to the backends, whatever
// their bodies.
//
// Found by the red team: the second was taken for a retry of the first,
// went to the primary (which applied the PUT) and was journaled no second
// time: the secondary never got it.
func TestAKeyReusedForAnotherOverriddenMethodIsRefused(t *testing.T) {
	primary := &overridingStore{values: map[string]string{}}
	secondary := &overridingStore{values: map[string]string{}}
	legacy, modern := httptestServer(t, primary.ServeHTTP), httptestServer(t, secondary.ServeHTTP)
	r := startRun(t, "serve", "--config", writeFacadeConfig(t, t.TempDir(), facadeConfig{legacy: legacy.URL, modern: modern.URL,
		routes: `
  - {name: items, match: "/items/{id}", mode: dual-write}
`}))
	send := func(override string) (int, string) {
		code, out, err := sendRequest("POST", "http://"+r.public+"/items/7", "", map[string]string{
			"Idempotency-Key": "k-1", "X-HTTP-Method-Override": override})
		if err != nil {
			t.Fatal(err)
		}
		return code, out
	}
	if code, out := send("DELETE"); code != http.StatusNoContent {
		t.Fatalf("the first write: %d %s; want the primary's 204", code, out)
	}
	if code, out := send("DELETE"); code != http.StatusNoContent {
		t.Fatalf("its retry: %d %s; want the primary's 204", code, out)
	}
	if code, out := send("PUT"); code != http.StatusUnprocessableEntity {
		t.Errorf("the key again standing for a PUT: %d %s; want 422", code, out)
	}
	if _, seen := primary.state(); len(seen) != 2 {
		t.Errorf("the primary applied %v; want the DELETE and its retry alone", seen)
	}
}
