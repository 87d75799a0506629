package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// These tests continue the red team's attacks (redteam_e2e_test.go,
// redteam2_e2e_test.go) from its third round.

// startFacadeYAML runs a facade in front of legacy and modern (URLs) with
// extra top-level YAML and routes, and an admin token for the admin API.
func startFacadeYAML(t *testing.T, legacy, modern, extra, routes string) *running {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "strangler.yaml")
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
  tokens: [{name: test, token: %q, role: viewer}]
backends:
  legacy: { url: %q, timeout: 5s }
  modern: { url: %q, timeout: 5s }
store: "sqlite:%s"
shutdown: { delay: 0s, grace: 5s }
%s
routes:
%s`, e2eAdminToken, legacy, modern, filepath.Join(dir, "strangler.db"), extra, routes)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return startRun(t, "serve", "--config", path)
}

// TestConcurrentUploadsStayWithinTheReplayBudget: every body a
// dual-write route journals is buffered whole first, up to
// max_replay_body each; many clients uploading at once made the facade
// buffer them all (found by the red team: a thousand clients sending 10
// MiB each would have held 10 GiB). replay_budget bounds them together: a
// request the budget has no room for gets 503 with Retry-After and a JSON
// error before any backend sees a byte, and a client that retries then
// gets its write through. Every write admitted is applied once by the
// primary, journaled, and reaches the secondary.
func TestConcurrentUploadsStayWithinTheReplayBudget(t *testing.T) {
	const clients, size = 48, 60_000
	var mu sync.Mutex
	got := map[string]int{} // body bytes the primary received, by X-Case
	var busy, peak atomic.Int64
	primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := busy.Add(1)
		defer busy.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		body, _ := io.ReadAll(r.Body)
		// Slow enough that the uploads overlap.
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		got[r.Header.Get("X-Case")] += len(body)
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(primary.Close)
	var delivered atomic.Int64
	secondary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		delivered.Add(1)
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(secondary.Close)
	// Room for four bodies of 60,000 bytes at once.
	r := startFacadeYAML(t, primary.URL, secondary.URL, "max_replay_body: 64KiB\nreplay_budget: 256KiB", `
  - {name: upload, match: "POST /uploads", mode: dual-write}`)

	client := &http.Client{Timeout: 30 * time.Second}
	var refused atomic.Int64
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := fmt.Sprint("upload", i)
			for try := 0; ; try++ {
				var body io.Reader = strings.NewReader(strings.Repeat("x", size))
				if i%2 == 1 {
					body = io.MultiReader(body) // no length: chunked
				}
				req, _ := http.NewRequest("POST", "http://"+r.public+"/uploads", body)
				req.Header.Set("X-Case", c)
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("%s: %v", c, err)
					return
				}
				out, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				switch {
				case resp.StatusCode == http.StatusCreated:
					return
				case resp.StatusCode != http.StatusServiceUnavailable:
					t.Errorf("%s: %d %s; want 201, or 503 while the budget is full", c, resp.StatusCode, out)
					return
				case !json.Valid(out) || !strings.Contains(string(out), "replay_budget") || resp.Header.Get("Retry-After") == "":
					t.Errorf("%s: 503 with Retry-After %q and body %s; want Retry-After and a JSON error naming replay_budget", c, resp.Header.Get("Retry-After"), out)
					return
				case try == 200:
					t.Errorf("%s: still refused after %d tries", c, try)
					return
				}
				refused.Add(1)
				time.Sleep(time.Duration(10+i%20) * time.Millisecond)
			}
		}()
	}
	wg.Wait()

	if p := peak.Load(); p > 4 {
		t.Errorf("the primary was sent %d uploads at once; the budget holds 4", p)
	}
	if refused.Load() == 0 {
		t.Errorf("no upload was refused: %d clients uploading at once all fit a budget of four", clients)
	}
	mu.Lock()
	for i := range clients {
		if n := got[fmt.Sprint("upload", i)]; n != size {
			t.Errorf("upload%d: the primary received %d body bytes, want %d once: a refused try must reach no backend", i, n, size)
		}
	}
	mu.Unlock()
	if got, want := metricValue(t, r.admin, `strangler_refused_total{reason="replay_budget",route="upload"}`), strconv.FormatInt(refused.Load(), 10); got != want {
		t.Errorf("strangler_refused_total{reason=replay_budget} = %q, want %s, the 503s the clients got", got, want)
	}
	if got := metricValue(t, r.admin, "strangler_replay_buffered_bytes"); got != "0" {
		t.Errorf("strangler_replay_buffered_bytes = %q once every upload ended, want 0", got)
	}
	// Nothing admitted is lost: every write reaches the secondary.
	deadline := time.Now().Add(20 * time.Second)
	for delivered.Load() < clients && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := delivered.Load(); n != clients {
		t.Errorf("the secondary received %d writes, want %d", n, clients)
	}
}

// lateBackend is a raw HTTP/1.1 backend that answers GET /late-204 and
// /late-304 with a head, then, a moment later, bytes nobody asked for: an
// answer of its own, as a backend that writes a body after a 204 or 304
// anyway does; and GET /late-length with a body, then more than its
// Content-Length said. Any other GET /x is
// answered x. It reads each request only once it has written the answer
// before, as a backend serving one connection at a time does.
func lateBackend(t *testing.T) string {
	t.Helper()
	const smuggled = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nSMUGGLED"
	return newRawBackend(t, func(line string) (string, bool) {
		target := strings.Fields(line)[1]
		switch target {
		case "/late-204":
			return "HTTP/1.1 204 No Content\r\n\r\n" + lateMarker + smuggled, false
		case "/late-304":
			return "HTTP/1.1 304 Not Modified\r\nETag: \"1\"\r\n\r\n" + lateMarker + smuggled, false
		case "/late-length":
			return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}" + lateMarker + ` "and":"more"}` + "\r\n\r\n", false
		}
		answer := strings.TrimPrefix(target, "/")
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(answer), answer), false
	}).addr
}

// TestBytesABackendSendsLateReachNoOtherClient: a backend that writes a
// body after a 204 or 304 anyway (which have none), or more than its
// Content-Length, writes it a moment after the head: the facade has
// passed the answer on and pooled the connection by then, and the next
// request sent on it read those bytes as its answer. Each client must
// get its own answer, however many ask at once.
//
// Found by the red team: the peek at an idle connection before reuse
// only sees bytes that have arrived, and the next request, sent at once,
// read "SMUGGLED" within a few rounds, or got a 502 for the stray bytes
// past a Content-Length. (Stray bytes past a Content-Length that form an
// answer of their own can still be read as the next one: nothing tells
// them from it.)
func TestBytesABackendSendsLateReachNoOtherClient(t *testing.T) {
	backend := "http://" + lateBackend(t)
	r := startFacadeYAML(t, backend, backend, "", `
  - {name: rest, match: "/*", mode: legacy}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 10 * time.Second}
	for _, target := range []string{"/late-204", "/late-304", "/late-length"} {
		t.Run(target, func(t *testing.T) {
			var wrong atomic.Int64
			for round := range 10 {
				// The late answer first; then, while the backend has yet
				// to send its late bytes, others' requests.
				resp, err := client.Get("http://" + r.public + target)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				var wg sync.WaitGroup
				for i := range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						want := fmt.Sprintf("r%d-%d", round, i)
						resp, err := client.Get("http://" + r.public + "/" + want)
						if err != nil {
							t.Error(err)
							return
						}
						got, _ := io.ReadAll(resp.Body)
						resp.Body.Close()
						if string(got) != want && wrong.Add(1) <= 3 {
							t.Errorf("GET /%s: %d %q, not its own answer", want, resp.StatusCode, got)
						}
					}()
				}
				wg.Wait()
			}
		})
	}
}

// TestIdempotencyKeysAreScopedToTheClient: a client's Idempotency-Key
// names a write among the requests carrying the same Authorization
// (idempotency_scope): another client that learns or guesses the key and
// sends the same request makes a write of its own, journaled and copied
// to the secondary, rather than a retry of the first client's (which went
// to the primary unjournaled, to be answered with the first client's
// write), and with another body it is not refused 422. A client's own
// retries are still one write, and clients sending no credential still
// share one space.
//
// Found by the red team: keys were one space for every client.
func TestIdempotencyKeysAreScopedToTheClient(t *testing.T) {
	r, legacy, modern := startEdgeFacade(t, "", `
  - {name: create-record, match: "POST /records", mode: dual-write}`)
	post := func(c, auth, key, body string) (*http.Response, string) {
		header := "Idempotency-Key: " + key + "\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n"
		if auth != "" {
			header += "Authorization: Bearer " + auth + "\r\n"
		}
		return rawHTTP(t, r.public, c, "POST", "/records", header, body)
	}
	delivered := func(c string) int {
		deadline := time.Now().Add(10 * time.Second)
		for len(modern.received(t, c)) == 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		return len(modern.received(t, c))
	}
	for _, s := range []struct {
		c, auth, key, body string
		status             int
		write              bool // a write of its own: journaled and copied to the secondary
	}{
		{"alice1", "alice", "k1", `{"a":1}`, 201, true},
		// Another client, the same key and request.
		{"mallory1", "mallory", "k1", `{"a":1}`, 201, true},
		// Another client, the same key, another request.
		{"mallory2", "mallory", "k1-other", `{"m":2}`, 201, true},
		{"alice2", "alice", "k1-other", `{"a":2}`, 201, true},
		// The first client's retry is still its first write.
		{"alice1-retry", "alice", "k1", `{"a":1}`, 201, false},
		{"alice1-changed", "alice", "k1", `{"a":9}`, 422, false},
		// Clients without a credential share one space.
		{"anon1", "", "k3", `{"n":1}`, 201, true},
		{"anon2", "", "k3", `{"n":2}`, 422, false},
	} {
		resp, out := post(s.c, s.auth, s.key, s.body)
		if resp.StatusCode != s.status {
			t.Errorf("%s: %d %s, want %d", s.c, resp.StatusCode, out, s.status)
		}
		if s.write {
			if n := delivered(s.c); n != 1 {
				t.Errorf("%s: the secondary received the write %d times, want once", s.c, n)
			}
		}
		if s.status == 422 && len(legacy.received(t, s.c)) != 0 {
			t.Errorf("%s: refused, yet the primary received it", s.c)
		}
	}
	if n := len(modern.received(t, "alice1-retry")); n != 0 {
		t.Errorf("the secondary received alice's retry %d times, want it only as her first write", n)
	}
}

// TestAMethodOverrideInAFormBodyIsRefused: Rails (Rack::MethodOverride),
// Laravel and Symfony read a POST's method from a _method field of its
// form body, urlencoded or multipart, as they do from the query: a POST
// standing for a PUT or DELETE that another route serves on its path is
// refused with 400 before any backend sees a byte, as is a form there that
// does not parse whole (another parser may find a _method in it). A form
// POST to a path
// where no other write route waits, or one whose _method is POST or
// absent, passes with its body whole.
//
// Found by the red team: a form POSTing _method=PUT to /records/4
// reached legacy alone, 201, past the dual-write PUT route, and modern
// never got the write.
func TestAMethodOverrideInAFormBodyIsRefused(t *testing.T) {
	r, legacy, modern := startEdgeFacade(t, "", `
  - {name: put-record, match: "PUT /records/{id}", mode: dual-write}
  - {name: delete-record, match: "DELETE /records/{id}", mode: dual-write}
  - {name: read-record, match: "GET /records/{id}", mode: fallback}
`)
	const form = "Content-Type: application/x-www-form-urlencoded\r\n"
	multipart := func(name, value string) (string, string) {
		body := "--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nAda\r\n" +
			"--b\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n--b--\r\n"
		return "Content-Type: multipart/form-data; boundary=b\r\n", body
	}
	mpPut, mpPutBody := multipart("_method", "put")
	mpName, mpNameBody := multipart("title", "PUT")
	for i, c := range []struct {
		target, header, body string
		refused              bool
	}{
		{"/records/4", form, "name=Ada&_method=PUT", true},
		{"/records/4", form, "_method=delete&name=Ada", true},
		{"/records/4", form, "name=Ada&%5Fmethod=PUT", true},
		{"/records/4", form, "name=Ada&.method=PUT", true},
		{"/records/4", mpPut, mpPutBody, true},
		// Rack 2 splits fields on ";" too; Go's parser does not.
		{"/records/4", form, "name=Ada;_method=PUT", true},
		// PHP reads a type up to a ","; some backends read the last of
		// two headers.
		{"/records/4", "Content-Type: application/x-www-form-urlencoded, application/json\r\n", "_method=PUT", true},
		{"/records/4", "Content-Type: application/json\r\n" + form, "_method=PUT", true},
		{"/records/4", form, "name=Ada&_method=POST", false},
		{"/records/4", form, "name=Ada&_method=GET", true}, // as the header and query say
		{"/records/4", form, "name=Ada", false},
		{"/records/4", mpName, mpNameBody, false},
		// Laravel reads a JSON object's too (redteam4_e2e_test.go).
		{"/records/4", "Content-Type: application/json\r\n", `{"_method":"PUT"}`, true},
		{"/notes/4", form, "name=Ada&_method=PUT", false},
	} {
		id := fmt.Sprint("form", i)
		resp, out := rawHTTP(t, r.public, id, "POST", c.target, c.header+"Content-Length: "+strconv.Itoa(len(c.body))+"\r\n", c.body)
		reached := append(legacy.received(t, id), modern.received(t, id)...)
		switch {
		case c.refused && (resp.StatusCode != http.StatusBadRequest || !strings.Contains(out, "method")):
			t.Errorf("%s %q: %d %s; want 400 naming the method override", c.target, c.body, resp.StatusCode, out)
		case c.refused && len(reached) > 0:
			t.Errorf("%s %q: refused, yet a backend received it", c.target, c.body)
		case !c.refused && resp.StatusCode != http.StatusCreated:
			t.Errorf("%s %q: %d %s; want it served", c.target, c.body, resp.StatusCode, out)
		case !c.refused && (len(reached) != 1 || reached[0].Body != c.body):
			t.Errorf("%s %q: the backends received %v; want the body whole, once", c.target, c.body, reached)
		}
	}
}
