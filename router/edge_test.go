package router

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"strangler/config/configfile"
	"strangler/edge"
	"strangler/internal/testkit"
	"strangler/metrics"
	"strangler/store"
)

// bodyBackend is a backend that records, per request, whether it could
// read the body whole: a backend must never take a broken client body for
// a complete, shorter one.
type bodyBackend struct {
	*backend
	mu       sync.Mutex
	inFlight int
	bodies   []bodyRead
}

type bodyRead struct {
	path     string
	body     string
	complete bool
}

func newBodyBackend(t *testing.T) *bodyBackend {
	b := &bodyBackend{}
	b.backend = newBackend(t, func(w http.ResponseWriter, r *http.Request) {})
	b.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.mu.Lock()
		b.inFlight++
		b.mu.Unlock()
		body, err := io.ReadAll(r.Body)
		b.mu.Lock()
		b.inFlight--
		b.bodies = append(b.bodies, bodyRead{r.URL.Path, string(body), err == nil})
		b.mu.Unlock()
		if err == nil {
			io.WriteString(w, "got it")
		}
	})
	return b
}

// settled waits until no request is being read, and returns what the
// backend read.
func (b *bodyBackend) settled(t *testing.T) []bodyRead {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b.mu.Lock()
		n, reads := b.inFlight, append([]bodyRead(nil), b.bodies...)
		b.mu.Unlock()
		if n == 0 {
			return reads
		}
		if time.Now().After(deadline) {
			t.Fatalf("the backend is still reading %d requests", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// jsonError reads a facade error body.
func jsonError(t *testing.T, resp *http.Response) string {
	t.Helper()
	var e errorBody
	if err := json.NewDecoder(resp.Body).Decode(&e); err != nil || e.Error == "" || e.RequestID == "" {
		t.Fatalf("status %d: body is not a JSON error (%v): %+v", resp.StatusCode, err, e)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	return e.Error
}

// bodyRoutes serve POST /buffered by buffering its body (a fallback that
// may be replayed), and POST /streamed by streaming it (legacy).
const bodyRoutes = `
  - {name: buffered, match: "POST /buffered", mode: fallback, fallback_methods: [POST]}
  - {name: streamed, match: "POST /streamed", mode: legacy}
`

func TestABrokenBodyReachesNoBackendComplete(t *testing.T) {
	for _, c := range []struct {
		name, body string
	}{
		{"a bad chunk size after a valid chunk", "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n"},
		{"a chunk longer than announced", "Transfer-Encoding: chunked\r\n\r\n2\r\nhello\r\n0\r\n\r\n"},
		{"a body ending before its Content-Length", "Content-Length: 100\r\n\r\nhello"},
		{"a chunked body ending before its last chunk", "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"},
		// net/http quotes the line in its error; the log must not.
		{"a trailer line that is no header field", "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nZelda Quimbyfrost MRN7730019\r\n\r\n"},
	} {
		for _, path := range []string{"/buffered", "/streamed"} {
			t.Run(c.name+" on "+path, func(t *testing.T) {
				be := newBodyBackend(t)
				f := newFacade(t, be.URL, be.URL, "", bodyRoutes)
				conn, r := rawRequest(t, f, "POST "+path+" HTTP/1.1\r\nHost: x\r\n"+c.body)
				conn.(interface{ CloseWrite() error }).CloseWrite() // the client is done: the body ends early
				resp, err := http.ReadResponse(r, nil)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != http.StatusBadRequest {
					t.Fatalf("status %d, want 400", resp.StatusCode)
				}
				if msg := jsonError(t, resp); !strings.Contains(msg, "body") {
					t.Errorf("error %q does not say the body is at fault", msg)
				}
				reads := be.settled(t)
				for _, read := range reads {
					if read.complete {
						t.Errorf("the backend read a complete body %q: a broken one was forwarded as a shorter one", read.body)
					}
				}
				if path == "/buffered" && len(reads) > 0 {
					t.Errorf("the backend received %d requests of a body that was buffered, want none", len(reads))
				}
				route := strings.TrimPrefix(path, "/")
				if got := f.metric(t, "strangler_requests_total", map[string]string{"route": route, "backend": "none", "code": "400"}); got != 1 {
					t.Errorf("requests_total{route=%s,backend=none,code=400} = %v, want 1", route, got)
				}
				lines := f.logLines(t, "request refused")
				if len(lines) != 1 {
					t.Fatalf("%d request refused log lines, want 1", len(lines))
				}
				if strings.Contains(f.logs.String(), path) || strings.Contains(f.logs.String(), "Quimbyfrost") {
					t.Errorf("the log holds the path or the trailer line: %s", f.logs)
				}
			})
		}
	}
}

func TestABrokenBodyIsNotHeldAgainstModern(t *testing.T) {
	modern := newBodyBackend(t)
	legacy := newBackend(t, answer(200, "legacy"))
	f := newFacade(t, legacy.URL, modern.URL, "", `  - {name: f, match: "POST /f", mode: fallback}`)
	_, r := rawRequest(t, f, "POST /f HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n")
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("got %v, %v; want 400", resp, err)
	}
	modern.settled(t)
	if w := f.router.deps.Stats.Window("f", time.Now(), time.Minute); w.ModernErrors != 0 || w.Fallbacks != 0 {
		t.Errorf("modern errors %d, fallbacks %d; want none: the client broke the request", w.ModernErrors, w.Fallbacks)
	}
	if legacy.hits() != 0 {
		t.Errorf("the broken request fell back to legacy")
	}
}

func TestASlowBodyTimesOut(t *testing.T) {
	for _, path := range []string{"/buffered", "/streamed"} {
		t.Run(path, func(t *testing.T) {
			be := newBodyBackend(t)
			f := newFacade(t, be.URL, be.URL, "body_timeout: 300ms", bodyRoutes)
			start := time.Now()
			// Two bytes of ten, then nothing: a client trickling its body.
			_, r := rawRequest(t, f, "POST "+path+" HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhe")
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Fatalf("status %d, want 408", resp.StatusCode)
			}
			jsonError(t, resp)
			if took := time.Since(start); took < 300*time.Millisecond {
				t.Errorf("answered after %v, before body_timeout", took)
			}
			for _, read := range be.settled(t) {
				if read.complete {
					t.Errorf("the backend read a complete body %q", read.body)
				}
			}
		})
	}
	t.Run("a body that keeps coming, however slowly, is not cut off", func(t *testing.T) {
		be := newBodyBackend(t)
		f := newFacade(t, be.URL, be.URL, "body_timeout: 2s", bodyRoutes)
		const body = "hello, world"
		conn, r := rawRequest(t, f, fmt.Sprintf("POST /streamed HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", len(body)))
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		// Over body_timeout in all, a tenth of it apart: a sender late by
		// ten times its pause on a loaded machine is still in time.
		for _, c := range body {
			time.Sleep(200 * time.Millisecond)
			conn.Write([]byte(string(c)))
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("got %v, %v; want 200", resp, err)
		}
		if reads := be.settled(t); len(reads) != 1 || !reads[0].complete || reads[0].body != body {
			t.Errorf("the backend read %+v, want the whole body", reads)
		}
	})
	t.Run("a backend slow to answer is not the client's fault", func(t *testing.T) {
		slow := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(700 * time.Millisecond)
			io.WriteString(w, "late but fine")
		})
		f := newFacade(t, slow.URL, slow.URL, "body_timeout: 300ms", bodyRoutes)
		resp, err := f.Client().Post(f.URL+"/streamed", "text/plain", strings.NewReader("hello"))
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("got %v, %v; want 200", resp, err)
		}
		resp.Body.Close()
	})
}

func TestMaxBody(t *testing.T) {
	be := newBodyBackend(t)
	f := newFacade(t, be.URL, be.URL, "max_body: 10", `
  - {name: buffered, match: "POST /buffered/*", mode: fallback, fallback_methods: [POST]}
  - {name: streamed, match: "POST /streamed/*", mode: legacy}
  - {name: big, match: "POST /big/*", mode: legacy, max_body: 1KiB}
`)
	for _, c := range []struct {
		name, path, framing, body string
		want                      int
	}{
		{"a Content-Length over max_body is refused", "/streamed", "Content-Length: 11\r\n\r\n", "hello world", 413},
		{"a Content-Length over max_body is refused before the body comes", "/streamed", "Content-Length: 11\r\n\r\n", "", 413},
		{"a chunked body over max_body is cut off", "/streamed", "Transfer-Encoding: chunked\r\n\r\n", "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n", 413},
		{"a buffered body over max_body is refused", "/buffered", "Transfer-Encoding: chunked\r\n\r\n", "6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n", 413},
		{"a route's own max_body wins", "/big", "Content-Length: 11\r\n\r\n", "hello world", 200},
		{"a body at max_body passes", "/streamed", "Content-Length: 10\r\n\r\n", "helloworld", 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := c.path + "/" + strings.ReplaceAll(c.name, " ", "-")
			_, r := rawRequest(t, f, "POST "+path+" HTTP/1.1\r\nHost: x\r\n"+c.framing+c.body)
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
			var reads []bodyRead
			for _, read := range be.settled(t) {
				if read.path == path {
					reads = append(reads, read)
				}
			}
			if c.want == 413 {
				if msg := jsonError(t, resp); !strings.Contains(msg, "max_body") {
					t.Errorf("error %q does not name max_body", msg)
				}
				for _, read := range reads {
					if read.complete {
						t.Errorf("the backend read a complete body %q", read.body)
					}
				}
				if strings.HasPrefix(c.framing, "Content-Length") && len(reads) > 0 {
					t.Errorf("the backend received a request whose Content-Length was over max_body")
				}
				return
			}
			if len(reads) != 1 || reads[0].body != c.body {
				t.Errorf("the backend read %+v, want %q", reads, c.body)
			}
		})
	}
}

func TestHeadersABackendNeverSeesFromAnUntrustedClient(t *testing.T) {
	legacy := newBackend(t, answer(200, "ok"))
	spoofed := map[string]string{
		"X-Real-IP": "6.6.6.6", "X-Forwarded-Prefix": "/admin", "X-Forwarded-Port": "1", "X-Forwarded-Server": "evil",
		"X-Forwarded-Ssl": "on", "X-Original-URL": "/admin", "X-Rewrite-URL": "/admin", "Forwarded": "for=6.6.6.6",
	}
	send := func(t *testing.T, f *facade) http.Header {
		req, _ := http.NewRequest(http.MethodGet, f.URL+"/x", nil)
		for k, v := range spoofed {
			req.Header.Set(k, v)
		}
		if resp, _ := f.do(t, req); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return legacy.last(t).Header
	}
	t.Run("they are dropped", func(t *testing.T) {
		f := newFacade(t, legacy.URL, legacy.URL, "", `  - {name: x, match: "GET /x", mode: legacy}`)
		got := send(t, f)
		for k := range spoofed {
			if v := got.Values(k); len(v) > 0 {
				t.Errorf("the backend received %s: %q", k, v)
			}
		}
	})
	t.Run("a trusted proxy's are kept", func(t *testing.T) {
		f := newFacade(t, legacy.URL, legacy.URL, "trusted_proxies: [127.0.0.1]", `  - {name: x, match: "GET /x", mode: legacy}`)
		got := send(t, f)
		for k, v := range spoofed {
			if g := got.Get(k); g != v {
				t.Errorf("the backend received %s: %q, want the trusted proxy's %q", k, g, v)
			}
		}
	})
}

func TestHeaderNamesWithUnderscores(t *testing.T) {
	legacy := newBackend(t, answer(200, "ok"))
	send := func(t *testing.T, f *facade) (int, http.Header) {
		t.Helper()
		// Raw, so that the names reach the facade as written.
		_, r := rawRequest(t, f, "GET /x HTTP/1.1\r\nHost: x\r\nX-User: alice\r\nX_User: admin\r\nX.User: admin\r\nX~Role: admin\r\n\r\n")
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 200 {
			jsonError(t, resp)
			return resp.StatusCode, nil
		}
		return resp.StatusCode, legacy.last(t).Header
	}
	route := `  - {name: x, match: "GET /x", mode: legacy}`
	t.Run("they are dropped by default", func(t *testing.T) {
		_, got := send(t, newFacade(t, legacy.URL, legacy.URL, "", route))
		if got.Get("X-User") != "alice" {
			t.Errorf("X-User = %q, want it passed on", got.Get("X-User"))
		}
		for _, k := range []string{"X_User", "X.User", "X~Role"} {
			if hasHeader(got, k) {
				t.Errorf("the backend received %s", k)
			}
		}
	})
	t.Run("reject refuses the request", func(t *testing.T) {
		before := legacy.hits()
		if status, _ := send(t, newFacade(t, legacy.URL, legacy.URL, "headers_with_underscores: reject", route)); status != 400 {
			t.Errorf("status %d, want 400", status)
		}
		if legacy.hits() != before {
			t.Errorf("the backend received the refused request")
		}
	})
	t.Run("allow passes them on", func(t *testing.T) {
		_, got := send(t, newFacade(t, legacy.URL, legacy.URL, "headers_with_underscores: allow", route))
		for _, k := range []string{"X_User", "X.User", "X~Role"} {
			if !hasHeader(got, k) {
				t.Errorf("the backend did not receive %s", k)
			}
		}
	})
	// The facade's own fields are its own in that spelling too: CGI and
	// PHP read X_Strangler_Primary_Id as X-Strangler-Primary-Id.
	t.Run("allow drops the facade's own fields spelled with _", func(t *testing.T) {
		f := newFacade(t, legacy.URL, legacy.URL, "headers_with_underscores: allow", route)
		_, r := rawRequest(t, f, "GET /x HTTP/1.1\r\nHost: x\r\nX_Strangler_Primary_Id: 4711\r\nx_strangler_shadow: 1\r\nX-Strangler_Force: modern\r\nX_User: ann\r\n\r\n")
		if resp, err := http.ReadResponse(r, nil); err != nil || resp.StatusCode != 200 {
			t.Fatalf("got %v, %v; want 200", resp, err)
		}
		got := legacy.last(t).Header
		for _, k := range []string{"X_Strangler_Primary_Id", "X_strangler_shadow", "X-Strangler_force"} {
			if hasHeader(got, k) {
				t.Errorf("the backend received %s", k)
			}
		}
		if !hasHeader(got, "X_User") {
			t.Errorf("the backend did not receive X_User")
		}
	})
}

// hasHeader reports whether h has a field named name in any case: Go
// canonicalizes X_User as X_user.
func hasHeader(h http.Header, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

func TestMethods(t *testing.T) {
	legacy := newBackend(t, answer(200, "ok"))
	f := newFacade(t, legacy.URL, legacy.URL, "allow_methods: [PROPFIND]", `
  - {name: dav, match: "/dav/*", mode: legacy}
  - {name: get, match: "GET /dav/file", mode: legacy}
`)
	for _, c := range []struct {
		method, path string
		want         int
		route        string
	}{
		{"PROPFIND", "/dav/file", 200, "dav"},
		{"PROPFIND", "/elsewhere", 200, "default"},
		{"GET", "/dav/file", 200, "get"},
		{"PURGE", "/dav/file", 405, "default"},
		{"get", "/dav/file", 405, "default"},
		{"TRACE", "/dav/file", 405, "default"},
		{"CONNECT", "legacy.internal:443", 405, "default"},
		{"GET", "*", 400, "default"},
	} {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			before := legacy.hits()
			_, r := rawRequest(t, f, c.method+" "+c.path+" HTTP/1.1\r\nHost: x\r\n\r\n")
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, c.want)
			}
			backend := "legacy"
			if c.want != 200 {
				backend = "none"
				jsonError(t, resp)
				if legacy.hits() != before {
					t.Errorf("the backend received the refused request")
				}
			}
			if c.want == 405 && resp.Header.Get("Allow") != "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, PROPFIND" {
				t.Errorf("Allow = %q", resp.Header.Get("Allow"))
			}
			if got := f.metric(t, "strangler_requests_total", map[string]string{"route": c.route, "backend": backend, "code": resp.Status[:3]}); got < 1 {
				t.Errorf("not counted under route %s, backend %s", c.route, backend)
			}
		})
	}
	// The refusals above count by why: four methods, one request-target.
	for reason, want := range map[refusal]float64{refusedMethod: 4, refusedRequest: 1} {
		if got := f.metric(t, "strangler_refused_total", map[string]string{"route": "default", "reason": string(reason)}); got != want {
			t.Errorf("strangler_refused_total{reason=%q} = %v, want %v", reason, got, want)
		}
	}
}

// TestRefusalReasonsAreAClosedSet: each refusal is a fixed word of a
// known set, never anything a client sent, and the metric's help names
// every one.
func TestRefusalReasonsAreAClosedSet(t *testing.T) {
	seen := map[refusal]bool{}
	for _, r := range refusals() {
		if seen[r] || !regexp.MustCompile(`^[a-z_]+$`).MatchString(string(r)) {
			t.Errorf("refusal %q twice or not a plain word", r)
		}
		seen[r] = true
		if !strings.Contains(metrics.Refused.Help, string(r)) {
			t.Errorf("the help of %s does not name %q", metrics.Refused.Name, r)
		}
	}
}

func TestTwoAuthorizationHeadersAreRefused(t *testing.T) {
	legacy := newBackend(t, answer(200, "ok"))
	f := newFacade(t, legacy.URL, legacy.URL, "", `  - {name: x, match: "GET /x", mode: legacy}`)
	_, r := rawRequest(t, f, "GET /x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer user\r\nAuthorization: Bearer admin\r\n\r\n")
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 400 || legacy.hits() != 0 {
		t.Errorf("status %d with %d backend requests, want 400 and none", resp.StatusCode, legacy.hits())
	}
}

func TestTheQueryIsForwardedAsSent(t *testing.T) {
	legacy := newBackend(t, answer(200, "ok"))
	f := newFacade(t, legacy.URL, legacy.URL, "", `  - {name: x, match: "GET /x/{id}", mode: legacy}`)
	const query = "b=2&a=1;c=%zz&d=%2F..%2F&e"
	_, r := rawRequest(t, f, "GET /x/%2e/1?"+query+" HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, err := http.ReadResponse(r, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("got %v, %v", resp, err)
	}
	if got := legacy.last(t); got.RawQuery != query || got.Path != "/x/1" {
		t.Errorf("the backend received %s?%s, want /x/1?%s", got.Path, got.RawQuery, query)
	}
}

func TestReadRepairKeysAreTheCanonicalParameter(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Start(ctx, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	legacy := newBackend(t, answer(200, "legacy"))
	modern := newBackend(t, answer(404, "missing"))
	cfg, err := configfile.Parse("test.yaml", []byte(fmt.Sprintf(`backends:
  legacy: {url: %q}
  modern: {url: %q}
routes:
  - {name: p, match: "GET /patients/{id}", mode: fallback, entity: patients, read_repair: true, allow_encoded_slash: true}
`, legacy.URL, modern.URL)), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	r := New(Deps{Metrics: NewMetrics(prometheus.NewRegistry()), Log: log, RepairKeys: st})
	table, err := r.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Swap(table)
	done := make(chan error)
	go func() { done <- r.RunRepairs(ctx) }()
	srv := httptest.NewServer(r)
	defer srv.Close()
	// /patients/42.json is patient 42 to Rails and Spring (a format
	// suffix): its key was 42.json, a patient no table has.
	for _, p := range []string{"/patients/%34%32", "/patients/42/", "/patients//42", "/patients/caf%c3%a9", "/patients/a%2fb", "/patients/42.json", "/patients/7.json"} {
		resp, err := srv.Client().Get(srv.URL + p)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v, %v", p, resp, err)
		}
		resp.Body.Close()
	}
	want := []string{"42", "7", "a/b", "café"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		keys, err := st.PendingRepairKeys(ctx, "patients", 100)
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(keys)
		if slices.Equal(keys, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read-repair keys %q, want %q: one key per patient, decoded", keys, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestARequestTheClientLeftIsNotForwarded(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Start(ctx, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	legacy := newBackend(t, answer(201, "created"))
	cfg, err := configfile.Parse("test.yaml", []byte(fmt.Sprintf(`backends:
  legacy: {url: %q}
  modern: {url: %q}
routes:
  - {name: w, match: "POST /w", mode: dual-write}
`, legacy.URL, legacy.URL)), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	r := New(Deps{Metrics: NewMetrics(prometheus.NewRegistry()), Log: log, Journal: storeJournal{Store: st}})
	table, err := r.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.Swap(table)
	// A stream the client reset: its context is done when the handler runs.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	// The handler cuts the exchange as net/http's servers expect
	// (http.ErrAbortHandler): no empty 200 goes out in the backend's name.
	func() {
		defer func() {
			if p := recover(); p != http.ErrAbortHandler {
				t.Errorf("the handler ended with %v, want the panic http.ErrAbortHandler", p)
			}
		}()
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/w", nil).WithContext(gone))
	}()
	if legacy.hits() != 0 {
		t.Errorf("the primary received a request whose client had left")
	}
	if list, err := st.ListRepairs(ctx, store.RepairFilter{Limit: 10}); err != nil || len(list) != 0 {
		t.Errorf("journaled %d writes (%v), want none", len(list), err)
	}
}

// TestARefusedMethodIsNamedInLogsAndSpansOnlyWhenKnown: a method is a
// token the client chooses; one the facade does not know (a record
// number, kilobytes of M) is _OTHER in the refusal's log line and its
// span (named HTTP, as the conventions say), and TRACE, which RFC 9110
// defines, is named.
func TestARefusedMethodIsNamedInLogsAndSpansOnlyWhenKnown(t *testing.T) {
	legacy := newBackend(t, answer(200, "ok"))
	for _, c := range []struct{ method, logged, span string }{
		{"MRN7730019", "_OTHER", "HTTP"},
		{strings.Repeat("M", 10000), "_OTHER", "HTTP"},
		{"TRACE", "TRACE", "TRACE"},
	} {
		f := newTracedFacade(t, legacy.URL, legacy.URL, "", `  - {name: x, match: "GET /x", mode: legacy}`)
		_, r := rawRequest(t, f.facade, c.method+" /x HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, err := http.ReadResponse(r, nil); err != nil || resp.StatusCode != 405 {
			t.Fatalf("%.20s: got %v, %v; want 405", c.method, resp, err)
		}
		lines := f.logLines(t, "request refused")
		if len(lines) != 1 || lines[0]["method"] != c.logged {
			t.Errorf("%.20s: request refused lines %v, want one with method %q", c.method, lines, c.logged)
		}
		want(t, f.span(t, trace.SpanKindServer, ""), c.span, codes.Unset, map[string]string{
			"http.request.method": c.logged, "http.response.status_code": "405",
		})
		if c.logged == "_OTHER" {
			noPatientData(t, f.spans.Ended(), c.method)
		}
	}
}

// TestARefusalDoesNotWaitForTheBody: a request refused before its body
// is read is answered at once, and its connection closed soon after,
// whether or not the client ever sends the body it declared.
func TestARefusalDoesNotWaitForTheBody(t *testing.T) {
	legacy := newBackend(t, answer(200, "ok"))
	f := newFacade(t, legacy.URL, legacy.URL, "", `  - {name: x, match: "/x", mode: legacy}`)
	for _, c := range []struct {
		name, head string
		want       int
	}{
		{"an unknown method", "PURGE /x HTTP/1.1\r\n", 405},
		{"an encoded slash", "POST /x%2Fy HTTP/1.1\r\n", 400},
		{"two Authorization headers", "POST /x HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n", 400},
		{"a chunked body", "PURGE /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n", 405},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := "Content-Length: 1000\r\n\r\nfirst"
			if strings.Contains(c.head, "chunked") {
				body = "\r\n5\r\nfirst"
			}
			// rawRequest's deadline (5 s) stands for "at once": without the
			// rest of the body, net/http would wait for it for good.
			conn, r := rawRequest(t, f, c.head+"Host: x\r\n"+body)
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatalf("no answer while the body is outstanding: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != c.want || !resp.Close {
				t.Errorf("got %d, Connection: close %v; want %d and the connection closed", resp.StatusCode, resp.Close, c.want)
			}
			conn.SetReadDeadline(time.Now().Add(4 * edge.RefusalLinger))
			if _, err := io.Copy(io.Discard, conn); err != nil {
				t.Errorf("the connection is still open: %v", err)
			}
		})
	}
	if legacy.hits() != 0 {
		t.Errorf("the backend received %d refused requests", legacy.hits())
	}
}

// TestAClientPipeliningWithoutReadingIsCutOff: an answer without a body
// (HEAD here; 204, 304 and OPTIONS * alike) is bounded by body_timeout as
// a body is: a client that pipelines requests and never reads the
// answers has its connection cut once a write waited that long.
func TestAClientPipeliningWithoutReadingIsCutOff(t *testing.T) {
	legacy := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		// Large heads, so that a few hundred answers fill the sockets'
		// buffers.
		w.Header().Set("X-Pad", strings.Repeat("p", 16<<10))
		w.WriteHeader(http.StatusOK)
	})
	f := newFacade(t, legacy.URL, legacy.URL, "body_timeout: 1s", `  - {name: x, match: "/x", mode: legacy}`)
	const asked = 1000
	conn := testkit.DialSmallWindow(t, strings.TrimPrefix(f.URL, "http://"))
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		io.WriteString(conn, strings.Repeat("HEAD /x HTTP/1.1\r\nHost: x\r\n\r\n", asked))
	}()
	// The cut shows to a client that reads nothing as a write that fails
	// (the facade closed the connection with requests unread, which resets
	// it), once the requests are out: wait for that rather than for a
	// fixed 5 s a loaded machine might not cut within. The probes (empty
	// lines) queue behind the thousand requests, which the facade does
	// not get through.
	testkit.Eventually(t, 30*time.Second, "the facade cuts the connection", func() bool {
		select {
		case <-sent:
		default:
			return false
		}
		_, err := conn.Write([]byte("\r\n"))
		return err != nil
	})
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	answers, r := 0, bufio.NewReader(conn)
	for {
		resp, err := http.ReadResponse(r, &http.Request{Method: "HEAD"})
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the connection is still open after %d answers: %v", answers, err)
			}
			break
		}
		resp.Body.Close()
		answers++
	}
	if answers >= asked {
		t.Errorf("got all %d answers; want the connection cut once an answer waited body_timeout for its client", answers)
	}
}

// TestAnIdempotencyKeySpelledWithUnderscoreIsRefused: under
// headers_with_underscores: allow, Idempotency_Key reaches the primary,
// which CGI and PHP read as Idempotency-Key: a client's retry was applied
// once by the primary and journaled twice for the secondary, which then
// applied it twice (found by the red team: 2 writes journaled for one key).
// It is refused (400 naming the header) before any backend sees a byte;
// Idempotency-Key itself still names the write.
func TestAnIdempotencyKeySpelledWithUnderscoreIsRefused(t *testing.T) {
	legacy := newBackend(t, answer(http.StatusCreated, `{"id":"7"}`))
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &dualWriteFacade{store: st}
	f.facade = serveConfig(t, testConfig(t, legacy.URL, legacy.URL, "headers_with_underscores: allow",
		`  - {name: create, match: "POST /items", mode: dual-write}`), func(d *Deps) { d.Journal = storeJournal{Store: st} })
	send := func(key string) *http.Response {
		t.Helper()
		_, r := rawRequest(t, f.facade, "POST /items HTTP/1.1\r\nHost: x\r\n"+key+": retry-1\r\nContent-Length: 9\r\n\r\n{\"a\":\"b\"}")
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, key := range []string{"Idempotency_Key", "idempotency_key", "Idempotency-Key"} {
		for range 2 { // a client's retry
			resp := send(key)
			if key == "Idempotency-Key" {
				if resp.StatusCode != http.StatusCreated {
					t.Errorf("%s: status %d, want 201", key, resp.StatusCode)
				}
				continue
			}
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%s: status %d, want 400", key, resp.StatusCode)
			}
			if msg := jsonError(t, resp); !strings.Contains(msg, "Idempotency-Key") {
				t.Errorf("%s: error %q does not name Idempotency-Key", key, msg)
			}
		}
	}
	if n := legacy.hits(); n != 2 {
		t.Errorf("the primary received %d requests, want the 2 keyed with Idempotency-Key", n)
	}
	if w := f.writes(t); len(w) != 1 {
		t.Errorf("%d writes journaled, want 1: one key, one write", len(w))
	}
}

// TestAFieldTheConnectionFieldNamesIsNoPartOfTheRequest: a field the
// client's Connection field names is removed before the request is
// forwarded (RFC 9110 section 7.6.1), so the facade decides without it
// too. "Content-Type: text/plain" with "Connection: Content-Type" and the
// body _method=PUT reached legacy untyped, which Rails reads as a form:
// a PUT past the dual-write route (found by the red team); it is refused with
// 400, as the same POST sent untyped is. An Idempotency-Key named there
// never reached the primary, which applied each try, while the facade
// journaled the first alone; now each try is a write of its own, as the
// primary saw it.
func TestAFieldTheConnectionFieldNamesIsNoPartOfTheRequest(t *testing.T) {
	setup := func(t *testing.T) (*dualWriteFacade, *backend, func(head, body string) *http.Response) {
		legacy := newBackend(t, answer(http.StatusCreated, `{"id":"7"}`))
		f := newDualWriteFacade(t, legacy.URL, legacy.URL, time.Second, `
  - {name: create, match: "POST /records", mode: dual-write}
  - {name: put-record, match: "PUT /records/{id}", mode: dual-write}
`)
		return f, legacy, func(head, body string) *http.Response {
			t.Helper()
			_, r := rawRequest(t, f.facade, head+"Host: x\r\nContent-Length: "+fmt.Sprint(len(body))+"\r\n\r\n"+body)
			resp, err := http.ReadResponse(r, nil)
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}
	}
	t.Run("a Content-Type named there is none", func(t *testing.T) {
		_, legacy, send := setup(t)
		resp := send("POST /records/4 HTTP/1.1\r\nContent-Type: text/plain\r\nConnection: keep-alive, content-type\r\n", "name=Ada&_method=PUT")
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("status %d, want 400", resp.StatusCode)
		}
		if msg := jsonError(t, resp); !strings.Contains(msg, "method") {
			t.Errorf("error %q does not name the method override", msg)
		}
		if n := legacy.hits(); n != 0 {
			t.Errorf("legacy received %d requests, want none", n)
		}
	})
	t.Run("an Idempotency-Key named there is none", func(t *testing.T) {
		f, legacy, send := setup(t)
		for range 2 {
			if resp := send("POST /records HTTP/1.1\r\nIdempotency-Key: try-1\r\nConnection: Idempotency-Key\r\n", `{"name":"Ada"}`); resp.StatusCode != http.StatusCreated {
				t.Fatalf("status %d, want 201", resp.StatusCode)
			}
		}
		if hasHeader(legacy.last(t).Header, "Idempotency-Key") {
			t.Errorf("the primary received an Idempotency-Key named in Connection")
		}
		if w := f.writes(t); len(w) != legacy.hits() {
			t.Errorf("%d writes journaled for the %d the primary applied", len(w), legacy.hits())
		}
	})
}

// TestAHeaderTheFacadeDecidesOnIsSentOnce: the facade read the first
// value of a route's sticky header and of an idempotency_scope header,
// while Node, Puma and nginx's FastCGI join repeated fields ("u1, u2")
// and, under headers_with_underscores: allow, PHP reads X_User_Id as
// X-User-Id (the last one winning): the split went by one user while the
// backend served another, and a key was scoped under one client's
// credential while the primary applied it as another's (found by
// the red team: 5 of 5 such requests forwarded). Each is refused with 400
// naming the header before any backend sees a byte; the header sent once
// passes.
func TestAHeaderTheFacadeDecidesOnIsSentOnce(t *testing.T) {
	legacy := newBackend(t, answer(http.StatusCreated, `{"id":"7"}`))
	modern := newBackend(t, answer(http.StatusCreated, `{"id":"7"}`))
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &dualWriteFacade{store: st}
	f.facade = serveConfig(t, testConfig(t, legacy.URL, modern.URL, "headers_with_underscores: allow\nidempotency_scope: [header:Authorization, header:x-api-key]", `
  - {name: split, match: "GET /split", mode: modern, percent: 50, sticky: "header:x-user-id"}
  - {name: create, match: "POST /records", mode: dual-write}
`), func(d *Deps) { d.Journal = storeJournal{Store: st} })
	send := func(head string) *http.Response {
		t.Helper()
		_, r := rawRequest(t, f.facade, head+"Host: x\r\nContent-Length: 2\r\n\r\n{}")
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, tc := range []struct{ head, header string }{
		{"GET /split HTTP/1.1\r\nX-User-Id: u1\r\nX-User-Id: u2\r\n", "X-User-Id"},
		{"GET /split HTTP/1.1\r\nX-User-Id: u1\r\nx-user-id: u2\r\n", "X-User-Id"},
		{"GET /split HTTP/1.1\r\nX-User-Id: u1\r\nX_User_Id: u2\r\n", "X-User-Id"},
		{"GET /split HTTP/1.1\r\nx_user_id: u2\r\n", "X-User-Id"},
		{"POST /records HTTP/1.1\r\nIdempotency-Key: k1\r\nX-Api-Key: a\r\nX_Api_Key: b\r\n", "X-Api-Key"},
	} {
		resp := send(tc.head)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%q: status %d, want 400", tc.head, resp.StatusCode)
			continue
		}
		if msg := jsonError(t, resp); !strings.Contains(msg, tc.header) {
			t.Errorf("%q: error %q does not name %s", tc.head, msg, tc.header)
		}
	}
	if n := legacy.hits() + modern.hits(); n != 0 {
		t.Errorf("the backends received %d requests, want none", n)
	}
	for _, head := range []string{
		"GET /split HTTP/1.1\r\nX-User-Id: u1\r\n",
		"POST /records HTTP/1.1\r\nIdempotency-Key: k1\r\nX-Api-Key: a\r\n",
	} {
		if resp := send(head); resp.StatusCode != http.StatusCreated {
			t.Errorf("%q: status %d, want 201", head, resp.StatusCode)
		}
	}
}
