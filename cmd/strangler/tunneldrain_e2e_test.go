package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// webSocketBackend answers a WebSocket handshake 101 and echoes every
// byte of the tunnel back until the facade closes it.
func webSocketBackend(t *testing.T) string {
	t.Helper()
	return httptestServer(t, testkit.WebSocketEcho(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"plain":true}`)
	})).URL
}

// TestAWebSocketGetsTheGraceAndEndsWithTheDrain: net/http forgets a
// hijacked connection, so Shutdown neither waited for an open WebSocket
// nor closed it; its handler went on, and the drain, which waits for
// handlers still at a backend (dual writes), waited the whole bound for
// it (the longer backend timeout + 12 s, 32 s here), warned that dual
// writes became unknown, and the tunnel ended only with the process. The
// tunnel now works through the grace, as a request in flight does, and
// is closed when the grace ends; the process exits soon after.
func TestAWebSocketGetsTheGraceAndEndsWithTheDrain(t *testing.T) {
	dir := t.TempDir()
	ws := webSocketBackend(t)
	cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: ws, modern: ws, timeout: 20 * time.Second, grace: 3 * time.Second,
		routes: `  - { name: chat, match: "GET /chat", mode: legacy }` + "\n"})
	p := startProcess(t, "serve", "--config", cfg)

	conn, err := net.Dial("tcp", p.public)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	io.WriteString(conn, "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	r := bufio.NewReader(conn)
	res, err := http.ReadResponse(r, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: got %v, %v; want 101", res, err)
	}
	echoes := func(msg string) bool {
		if _, err := io.WriteString(conn, msg); err != nil {
			return false
		}
		buf := make([]byte, len(msg))
		_, err := io.ReadFull(r, buf)
		return err == nil && string(buf) == msg
	}
	if !echoes("before") {
		t.Fatal("the tunnel does not echo")
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { p.cmd.Wait(); close(exited) }()
	testkit.Eventually(t, 10*time.Second, "/readyz fails", func() bool {
		res, err := http.Get("http://" + p.admin + "/readyz")
		if err != nil {
			return true
		}
		res.Body.Close()
		return res.StatusCode == http.StatusServiceUnavailable
	})
	if !echoes("during the grace") {
		t.Error("the tunnel ended when the drain began; want it to work through shutdown.grace")
	}
	// The old code held the tunnel, and the process, for 32 s after the
	// grace; the grace is 3 s.
	ended := make(chan error, 1)
	go func() {
		_, err := r.ReadByte()
		ended <- err
	}()
	select {
	case err := <-ended:
		if err != io.EOF {
			t.Logf("the tunnel ended with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the tunnel was still open 20 s after SIGTERM (grace 3 s)")
	}
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the facade had not exited 20 s after its tunnel ended")
	}
	logs := p.logs.String()
	if !strings.Contains(logs, `"msg":"closed upgraded connections still open when the shutdown grace ended","connections":1`) {
		t.Errorf("no log line for the closed tunnel in:\n%s", logs)
	}
	if strings.Contains(logs, "their dual writes become unknown") {
		t.Errorf("the drain took the tunnel for a dual write at a primary:\n%s", logs)
	}
}
