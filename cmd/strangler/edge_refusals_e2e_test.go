package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"strangler/internal/testcert"
	"strangler/internal/testkit"
)

// TestMethodsTargetsAndHeadersAtTheEdge sends the methods, request-targets
// and headers that must not pass as they are, and checks what the client
// gets and what, if anything, a backend sees.
func TestMethodsTargetsAndHeadersAtTheEdge(t *testing.T) {
	r, legacy, modern := startEdgeFacade(t, "allow_methods: [PROPFIND]", `
  - {name: patient, match: "GET /patients/{id}", mode: modern}
`)
	const allow = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, PROPFIND"
	for i, c := range []struct {
		name, method, target, header string
		status                       int
		netHTTP                      bool // refused by Go's HTTP server, before any handler: then the connection closes
	}{
		{"CONNECT is never forwarded", "CONNECT", "legacy.internal:443", "", 405, false},
		{"TRACE is never forwarded", "TRACE", "/patients/1", "", 405, false},
		{"an unknown method is refused", "PURGE", "/patients/1", "", 405, false},
		{"methods are case-sensitive", "get", "/patients/1", "", 405, false},
		{"allow_methods lets a method through", "PROPFIND", "/dav/", "", 200, false},
		{"GET * is refused", "GET", "*", "", 400, false},
		{"PRI * is refused", "PRI", "*", "", 405, false},
		{"OPTIONS * is answered by the facade", "OPTIONS", "*", "", 200, false},
		{"two Authorization headers are refused", "GET", "/patients/1", "Authorization: Bearer a\r\nAuthorization: Bearer b\r\n", 400, false},
		{"two Host headers are refused", "GET", "/patients/1", "Host: other\r\n", 400, true},
		{"a header name with a space is refused", "GET", "/patients/1", "X User: admin\r\n", 400, true},
		{"an origin-form target must start with /", "GET", "patients/1", "", 400, true},
	} {
		id := fmt.Sprint("m", i)
		t.Run(c.name, func(t *testing.T) {
			resp, out := rawHTTP(t, r.public, id, c.method, c.target, c.header, "")
			if resp.StatusCode != c.status {
				t.Fatalf("status %d %q, want %d", resp.StatusCode, out, c.status)
			}
			reached := len(legacy.received(t, id)) + len(modern.received(t, id))
			switch {
			case c.method == "PROPFIND":
				if reached != 1 {
					t.Errorf("%d backend requests, want 1", reached)
				}
				return
			case reached > 0:
				t.Errorf("refused, yet a backend received it")
			}
			if c.netHTTP && !resp.Close {
				t.Errorf("Connection %q, want close", resp.Header.Get("Connection"))
			}
			if c.target == "*" && c.status == 200 {
				if got := resp.Header.Get("Allow"); got != allow {
					t.Errorf("Allow = %q, want %q", got, allow)
				}
				return
			}
			if !strings.Contains(out, `"error":`) {
				t.Errorf("body %q, want a JSON error", out)
			}
			if c.status == 405 && resp.Header.Get("Allow") != allow {
				t.Errorf("Allow = %q, want %q", resp.Header.Get("Allow"), allow)
			}
		})
	}
	t.Run("what a client may not claim never reaches a backend", func(t *testing.T) {
		spoofed := "X-Real-IP: 6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\n" +
			"X-Forwarded-Prefix: /admin\r\nX-Forwarded-Port: 1\r\nX-Forwarded-Server: evil\r\nForwarded: for=6.6.6.6\r\n" +
			"X-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\nX-User: alice\r\nX_User: admin\r\nX.User: admin\r\n"
		resp, _ := rawHTTP(t, r.public, "h", "GET", "/patients/1", spoofed, "")
		got := modern.received(t, "h")
		if resp.StatusCode != 200 || len(got) != 1 {
			t.Fatalf("status %d, %d requests at modern; want 200 and 1", resp.StatusCode, len(got))
		}
		h := got[0].Header
		for k, v := range h {
			if strings.Contains(strings.Join(v, ","), "6.6.6.6") || strings.Contains(strings.Join(v, ","), "evil") || strings.Contains(strings.Join(v, ","), "admin") {
				t.Errorf("modern received %s: %q", k, v)
			}
		}
		if h.Get("X-User") != "alice" || h.Get("X-Forwarded-For") != "127.0.0.1" || h.Get("X-Forwarded-Proto") != "http" {
			t.Errorf("modern received X-User %q, X-Forwarded-For %q, -Proto %q; want alice, the client's address, http",
				h.Get("X-User"), h.Get("X-Forwarded-For"), h.Get("X-Forwarded-Proto"))
		}
	})
}

// bodyRoutesE2E buffer a body (dual-write) or stream it (legacy).
const bodyRoutesE2E = `
  - {name: create-record, match: "POST /records", mode: dual-write}
  - {name: upload, match: "POST /uploads", mode: legacy}
`

// TestBrokenAndSlowBodiesAtTheEdge sends bodies that cannot be read whole,
// or come too slowly, to a route that buffers them (dual-write: nothing may
// reach a backend or the journal) and to one that streams them (the backend
// must see an incomplete message, never a complete shorter one).
func TestBrokenAndSlowBodiesAtTheEdge(t *testing.T) {
	r, legacy, modern := startEdgeFacade(t, "body_timeout: 500ms", bodyRoutesE2E)
	for i, c := range []struct {
		name, framing, body string
		status              int
	}{
		{"a bad chunk size after a valid chunk", "Transfer-Encoding: chunked\r\n", "5\r\nhello\r\nzz\r\n", 400},
		{"a chunk longer than its size", "Transfer-Encoding: chunked\r\n", "2\r\nhello\r\n0\r\n\r\n", 400},
		{"a body ending before its Content-Length", "Content-Length: 100\r\n", "hello", 400},
		{"a body stalling for body_timeout", "Content-Length: 10\r\n", "he", 408},
	} {
		for _, path := range []string{"/records", "/uploads"} {
			id := fmt.Sprint("b", i, path)
			t.Run(c.name+" on "+path, func(t *testing.T) {
				before := journaled(t, r.admin, "create-record")
				conn, err := net.Dial("tcp", r.public)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(20 * time.Second))
				fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: facade\r\nX-Case: %s\r\n%s\r\n%s", path, id, c.framing, c.body)
				if c.status == 400 {
					conn.(*net.TCPConn).CloseWrite() // the client is done sending
				}
				start := time.Now()
				out, _ := io.ReadAll(conn)
				if !strings.HasPrefix(string(out), fmt.Sprintf("HTTP/1.1 %d ", c.status)) || !strings.Contains(string(out), `"error":`) {
					t.Fatalf("got %q, want %d with a JSON error", out, c.status)
				}
				if c.status == 408 && time.Since(start) < 400*time.Millisecond {
					t.Errorf("408 after %v, before body_timeout", time.Since(start))
				}
				got := append(legacy.received(t, id), modern.received(t, id)...)
				for _, g := range got {
					if g.Complete {
						t.Errorf("a backend read a complete body %q", g.Body)
					}
				}
				if path == "/records" {
					if len(got) > 0 {
						t.Errorf("a body the route buffers reached a backend %d times", len(got))
					}
					if after := journaled(t, r.admin, "create-record"); len(after) != len(before) {
						t.Errorf("the broken write was journaled")
					}
				}
			})
		}
	}
	t.Run("each refusal is logged once, without the path", func(t *testing.T) {
		// Log lines are written in batches: wait for the last one
		// (generously: a loaded machine can take seconds to write them).
		deadline := time.Now().Add(30 * time.Second)
		lines := 0
		for lines < 8 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			lines = strings.Count(r.logs.String(), `"msg":"request refused"`)
		}
		if lines != 8 {
			t.Errorf("%d request refused lines, want 8", lines)
		}
		if strings.Contains(r.logs.String(), "/records") || strings.Contains(r.logs.String(), "/uploads") {
			t.Errorf("a log line holds a path")
		}
	})
}

// TestHTTP2RapidResetThroughTheFacade opens 20,000 streams on one TLS
// connection, resetting each at once, with golang.org/x/net/http2's
// framer: the facade sends GOAWAY and closes the connection, and at most
// 100 requests reach the backend.
func TestHTTP2RapidResetThroughTheFacade(t *testing.T) {
	var reached atomic.Int64
	backend := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		io.WriteString(w, "ok")
	})
	ca := testcert.NewAuthority(t)
	certFile, keyFile := ca.Files("facade")
	ca.Issue(t, 1, certFile, keyFile, "127.0.0.1")
	dir := t.TempDir()
	path := filepath.Join(dir, "strangler.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf(`listen: "127.0.0.1:0"
tls: { cert: %q, key: %q }
admin: { listen: "127.0.0.1:0" }
store: "sqlite:%s/s.db"
backends:
  legacy: { url: %q }
  modern: { url: %q }
routes:
  - {name: get, match: "GET /x", mode: modern}
`, certFile, keyFile, dir, backend.URL, backend.URL)), 0o644)
	r := startRun(t, "serve", "--config", path)

	conn := testkit.DialH2(t, r.public, nil, 60*time.Second)
	var wmu sync.Mutex
	w := http2.NewFramer(conn, nil)
	w.WriteSettings()
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "facade"}, {":path", "/x"}} {
		enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	block := hbuf.Bytes()
	go func() {
		for i := range 20000 {
			id := uint32(2*i + 1)
			wmu.Lock()
			err := w.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true})
			if err == nil {
				err = w.WriteRSTStream(id, http2.ErrCodeCancel)
			}
			wmu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	rd := http2.NewFramer(io.Discard, conn)
	var goAway *http2.GoAwayFrame
	var end error
	for {
		f, err := rd.ReadFrame()
		if err != nil {
			end = err
			break
		}
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			goAway = &http2.GoAwayFrame{ErrCode: f.ErrCode}
		case *http2.SettingsFrame:
			if !f.IsAck() {
				wmu.Lock()
				w.WriteSettingsAck()
				wmu.Unlock()
			}
		}
	}
	if goAway == nil || goAway.ErrCode != http2.ErrCodeEnhanceYourCalm {
		t.Errorf("GOAWAY = %+v, want one with ENHANCE_YOUR_CALM", goAway)
	}
	if ne, ok := end.(net.Error); ok && ne.Timeout() {
		t.Errorf("the facade kept the connection open")
	}
	// The connection is closed: no further request can start.
	if n := reached.Load(); n > 100 {
		t.Errorf("%d requests reached the backend, want at most 100", n)
	}
	t.Logf("%d requests reached the backend", reached.Load())
}
