package router

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// TestBytesSentBehindAnUpgradeReachTheBackend: bytes a client sends in
// the same write as its upgrade request, before the 101, were read into
// net/http's buffer with the request and never reached the backend: the
// tunnel copied from the connection alone.
func TestBytesSentBehindAnUpgradeReachTheBackend(t *testing.T) {
	echo := newBackend(t, testkit.WebSocketEcho(t, func(w http.ResponseWriter, r *http.Request) {}))
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

// TestAnIdleTunnelHoldsNoCopyBuffer: io.Copy held 32 KiB each way for
// as long as a tunnel lasted, so an idle WebSocket cost the facade about
// 85 KiB of heap; a waiting tunnel now holds its small buffer alone.
func TestAnIdleTunnelHoldsNoCopyBuffer(t *testing.T) {
	tab := &Table{buffers: newBufferPool()}
	const tunnels = 200
	var ends []net.Conn
	defer func() {
		for _, c := range ends {
			c.Close()
		}
	}()
	errc := make(chan error, 2*tunnels)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range tunnels {
		src, srcPeer := net.Pipe()
		dst, dstPeer := net.Pipe()
		ends = append(ends, src, srcPeer, dst, dstPeer)
		go tab.tunnel(dst, src, errc)
	}
	// Each tunnel is waiting in its read once it allocated its buffer;
	// a few bytes through each make sure it got there.
	for i := 0; i < len(ends); i += 4 {
		go ends[i+1].Write([]byte("ping"))
		if _, err := io.ReadFull(ends[i+3], make([]byte, 4)); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / tunnels; per > 8<<10 {
		t.Errorf("an idle tunnel direction holds %d bytes of heap, want at most 8 KiB", per)
	}
}

// TestATunnelCarriesABurstIntact: bytes that come faster than the small
// buffer fills go through a pooled one, and back to the small one, in
// order and whole.
func TestATunnelCarriesABurstIntact(t *testing.T) {
	echo := newBackend(t, testkit.WebSocketEcho(t, func(w http.ResponseWriter, r *http.Request) {}))
	f := newFacade(t, echo.URL, echo.URL, "", `  - {name: ws, match: "GET /ws", mode: legacy}`)
	conn, r := rawRequest(t, f, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	if res, err := http.ReadResponse(r, nil); err != nil || res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("got %v, %v; want 101", res, err)
	}
	for _, size := range []int{1, tunnelWait, 1 << 20, 3} {
		sent := make([]byte, size)
		for i := range sent {
			sent[i] = byte(i * 7)
		}
		go conn.Write(sent)
		got := make([]byte, size)
		if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, sent) {
			t.Fatalf("%d bytes: echoed %d bytes differing from those sent (%v)", size, len(got), err)
		}
	}
}

// TestAWebSocketIsCountedAsItsSwitch: the 101 reaches the client past
// the status writer, so a WebSocket that ended was counted as a client
// that left before its answer (code="499"), which the metrics promise
// for that alone, and modern's as no answer at all.
func TestAWebSocketIsCountedAsItsSwitch(t *testing.T) {
	echo := newBackend(t, testkit.WebSocketEcho(t, func(w http.ResponseWriter, r *http.Request) {}))
	f := newFacade(t, echo.URL, echo.URL, "", `  - {name: ws, match: "GET /ws", mode: modern}`)
	conn := tunnelEchoes(t, f, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	const life = 1500 * time.Millisecond
	time.Sleep(life) // the WebSocket's life, which is no latency
	conn.Close()
	count := func(code string) float64 {
		return f.metric(t, "strangler_requests_total", map[string]string{"route": "ws", "backend": "modern", "code": code})
	}
	testkit.Eventually(t, 10*time.Second, "the WebSocket is counted", func() bool { return count("101")+count("499") > 0 })
	if got101, got499 := count("101"), count("499"); got101 != 1 || got499 != 0 {
		t.Errorf("counted code=101 %v times and code=499 %v times, want 1 and 0", got101, got499)
	}
	// Its duration is its handshake's: its life made the route's latency
	// quantiles (the dashboard's p99) its own.
	took := testkit.Gather(t, f.reg).Observed("strangler_request_duration_seconds", "route", "ws", "backend", "modern")
	if took >= life.Seconds() {
		t.Errorf("the WebSocket's duration was observed as %.3fs, its whole life; want its handshake's, under %v", took, life)
	}
}
