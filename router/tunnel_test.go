package router

import (
	"io"
	"net/http"
	"testing"
)

// TestBytesSentBehindAnUpgradeReachTheBackend: bytes a client sends in
// the same write as its upgrade request, before the 101, were read into
// net/http's buffer with the request and never reached the backend: the
// tunnel copied from the connection alone.
func TestBytesSentBehindAnUpgradeReachTheBackend(t *testing.T) {
	echo := newBackend(t, webSocketEcho(t, func(w http.ResponseWriter, r *http.Request) {}))
	f := newFacade(t, echo.URL, echo.URL, "", `  - {name: ws, match: "GET /ws", mode: legacy}`)
	conn, r := rawRequest(t, f, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\nearly")
	res, err := http.ReadResponse(r, nil)
	if err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got %v, %v; want 101", res, err)
	}
	io.WriteString(conn, "+late")
	got := make([]byte, len("early+late"))
	n, err := io.ReadFull(r, got)
	if string(got[:n]) != "early+late" {
		t.Errorf("the backend echoed %q (%v), want %q", got[:n], err, "early+late")
	}
}
