package router

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// TestABackendsTrailerReachesTheClientWithoutFieldsThatCannotBeThere
// reads the facade's answer as bytes: of the trailer fields a backend
// sends after a chunked body without announcing them, the client gets
// those that may be trailer fields, and none that frame, route, control
// the response or belong to one connection (they reached it as the
// backend wrote them, a Content-Length and a Host among them).
func TestABackendsTrailerReachesTheClientWithoutFieldsThatCannotBeThere(t *testing.T) {
	legacy := rawAnswer(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"+
		"X-Checksum: 42\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n"+
		"Host: elsewhere\r\nSet-Cookie: s=1\r\n\r\n")
	f := newFacade(t, legacy, legacy, "", `  - {name: x, match: "GET /x", mode: legacy}`)
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	answer, _ := io.ReadAll(conn)
	_, trailer, found := strings.Cut(string(answer), "\r\n0\r\n")
	if !found || !strings.Contains(trailer, "X-Checksum: 42\r\n") {
		t.Fatalf("answer %q, want a chunked body ending in the trailer X-Checksum", answer)
	}
	for _, field := range []string{"Content-Length", "Transfer-Encoding", "Connection", "Host", "Set-Cookie"} {
		if strings.Contains(trailer, field+":") {
			t.Errorf("the client got the trailer field %s: %q", field, trailer)
		}
	}
}

// TestABackendsMalformedTrailerLineStaysOutOfTheLog: the forwarder logs
// the error of a body that broke off, at level debug; net/http's error
// quoted the backend's malformed trailer line, which may be a patient's
// record.
func TestABackendsMalformedTrailerLineStaysOutOfTheLog(t *testing.T) {
	legacy := rawAnswer(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nAda Lovelace 1815\r\n\r\n")
	logs := &syncBuffer{}
	f := serveConfig(t, testConfig(t, legacy, legacy, "", `  - {name: x, match: "GET /x", mode: legacy}`), func(d *Deps) {
		d.Log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	resp, err := f.Client().Get(f.URL + "/x")
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	if !strings.Contains(logs.String(), "backend answer broke off") {
		t.Fatalf("the broken body was not logged at level debug; log:\n%s", logs)
	}
	if strings.Contains(logs.String(), "Lovelace") {
		t.Errorf("the log holds the backend's bytes:\n%s", logs)
	}
}
