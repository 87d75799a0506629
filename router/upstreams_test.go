package router

import (
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"strangler/internal/testcert"
	"strangler/internal/testkit"
)

// connTracker is a backend that says which connection each request came
// on and which connections it saw closed.
type connTracker struct {
	*httptest.Server
	mu     sync.Mutex
	closed map[string]bool
}

func newConnTracker(t *testing.T) *connTracker {
	c := &connTracker{closed: map[string]bool{}}
	c.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.RemoteAddr)
	}))
	c.Config.ConnState = func(conn net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			c.mu.Lock()
			c.closed[conn.RemoteAddr().String()] = true
			c.mu.Unlock()
		}
	}
	c.Start()
	t.Cleanup(c.Close)
	return c
}

func (c *connTracker) isClosed(addr string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed[addr]
}

// TestAReloadKeepsTheConnectionsOfABackendItLeavesAsItWas: a reload that
// changes routes only keeps the backend's warm connections; one that
// changes how the backend is reached starts new ones and closes the old.
func TestAReloadKeepsTheConnectionsOfABackendItLeavesAsItWas(t *testing.T) {
	legacy := newConnTracker(t)
	config := func(timeout, mode string) string {
		return fmt.Sprintf(`
backends:
  legacy: {url: %q, timeout: %s}
  modern: {url: %q, timeout: 30s}
routes:
  - {name: r, match: "GET /r", mode: %s}`, legacy.URL, timeout, legacy.URL, mode)
	}
	f := serveConfig(t, parseConfig(t, config("30s", "legacy")))
	reload := func(yaml string) {
		t.Helper()
		table, err := f.router.Build(parseConfig(t, yaml))
		if err != nil {
			t.Fatal(err)
		}
		f.router.Swap(table)
	}
	conn := func() string {
		t.Helper()
		_, body := f.get(t, "/r")
		return body
	}
	first := conn()
	reload(config("30s", "legacy"))
	reload(config("30s", "shadow")) // routes change, backends do not
	if got := conn(); got != first {
		t.Errorf("after reloads that left the backend as it was, the request came on %s, want the warm %s", got, first)
	}
	reload(config("20s", "legacy"))
	if got := conn(); got == first {
		t.Errorf("after a reload that changed the backend's timeout, the request came on the old connection %s", got)
	}
	testkit.Eventually(t, 30*time.Second, "the replaced backend's idle connection closed", func() bool { return legacy.isClosed(first) })
}

// TestHTTPSBackendsAsConfigured: backends.*.tls names the authority and
// the server name; a backend offering less than TLS 1.2 is refused; a
// reload that changes the authority file's contents makes new
// connections with it.
func TestHTTPSBackendsAsConfigured(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewAuthority(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.Issue(t, 2, certFile, keyFile, "modern.internal")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	serve := func(maxVersion uint16) *httptest.Server {
		s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Proto) }))
		s.EnableHTTP2 = true
		s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS10, MaxVersion: maxVersion}
		s.Config.ErrorLog = log.New(io.Discard, "", 0)
		s.StartTLS()
		t.Cleanup(s.Close)
		return s
	}
	current, old := serve(0), serve(tls.VersionTLS11)
	caFile := filepath.Join(dir, "ca.pem")
	pem, _ := os.ReadFile(ca.CAFile)
	os.WriteFile(caFile, pem, 0o600)
	config := func(modernURL string) string {
		return fmt.Sprintf(`
backends:
  legacy: {url: %q, timeout: 30s}
  modern: {url: %q, timeout: 30s, tls: {ca: %q, server_name: modern.internal}}
routes:
  - {name: r, match: "GET /r", mode: modern}`, modernURL, modernURL, caFile)
	}
	f := serveConfig(t, parseConfig(t, config(current.URL)))
	if resp, body := f.get(t, "/r"); resp.StatusCode != 200 || body != "HTTP/2.0" {
		t.Errorf("the https backend: got %d %q, want 200 over HTTP/2.0", resp.StatusCode, body)
	}

	// Another authority in the same file: the reload trusts it and no
	// longer the old one.
	other := testcert.NewAuthority(t)
	pem, _ = os.ReadFile(other.CAFile)
	os.WriteFile(caFile, pem, 0o600)
	table, err := f.router.Build(parseConfig(t, config(current.URL)))
	if err != nil {
		t.Fatal(err)
	}
	f.router.Swap(table)
	if resp, _ := f.get(t, "/r"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("after the authority file changed to one that did not sign the backend: got %d, want 502", resp.StatusCode)
	}

	g := serveConfig(t, parseConfig(t, fmt.Sprintf(`
backends:
  legacy: {url: %q, timeout: 30s}
  modern: {url: %q, timeout: 30s, tls: {ca: %q, server_name: modern.internal}}
routes:
  - {name: r, match: "GET /r", mode: modern}`, old.URL, old.URL, ca.CAFile)))
	if resp, _ := g.get(t, "/r"); resp.StatusCode != http.StatusBadGateway {
		t.Errorf("a backend offering TLS 1.1 at most: got %d, want 502", resp.StatusCode)
	}
}

// TestWebSocketToAnHTTP2Backend: a WebSocket upgrade reaches an https
// backend that also speaks HTTP/2 over HTTP/1.1, as Go's transport sends
// it (an upgrade has no place in HTTP/2), and the tunnel carries bytes
// both ways; a plain GET to the same backend still goes over HTTP/2.
func TestWebSocketToAnHTTP2Backend(t *testing.T) {
	dir := t.TempDir()
	ca := testcert.NewAuthority(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.Issue(t, 2, certFile, keyFile, "modern.internal")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s := httptest.NewUnstartedServer(testkit.WebSocketEcho(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	s.EnableHTTP2 = true
	s.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	s.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.StartTLS()
	t.Cleanup(s.Close)
	f := serveConfig(t, parseConfig(t, fmt.Sprintf(`
backends:
  legacy: {url: %q, timeout: 30s}
  modern: {url: %q, timeout: 30s, tls: {ca: %q, server_name: modern.internal}}
routes:
  - {name: ws, match: "GET /ws", mode: modern}`, s.URL, s.URL, ca.CAFile)))

	tunnelEchoes(t, f, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	if resp, body := f.get(t, "/ws"); resp.StatusCode != 200 || body != "HTTP/2.0" {
		t.Errorf("a GET to the same backend: got %d %q, want 200 over HTTP/2.0", resp.StatusCode, body)
	}
}
