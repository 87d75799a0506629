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
	answer := rawGetX(t, f)
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

// TestTheClientIsPromisedOnlyTrailerFieldsThatMayBeSent reads the
// facade's answer as bytes: a backend announces in its Trailer field
// names that cannot be trailer fields besides X-Checksum; the client's
// Trailer field names X-Checksum alone (it named them all, promising
// fields the facade drops at the body's end).
func TestTheClientIsPromisedOnlyTrailerFieldsThatMayBeSent(t *testing.T) {
	legacy := rawAnswer(t, "HTTP/1.1 200 OK\r\nTrailer: Set-Cookie, X-Checksum, Host, Location, Date\r\n"+
		"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Checksum: 42\r\nSet-Cookie: s=1\r\nHost: elsewhere\r\n\r\n")
	f := newFacade(t, legacy, legacy, "", `  - {name: x, match: "GET /x", mode: legacy}`)
	answer := rawGetX(t, f)
	head, rest, _ := strings.Cut(string(answer), "\r\n\r\n")
	var announced []string
	for line := range strings.SplitSeq(head, "\r\n") {
		if name, value, ok := strings.Cut(line, ":"); ok && strings.EqualFold(name, "Trailer") {
			announced = append(announced, strings.TrimSpace(value))
		}
	}
	if len(announced) != 1 || announced[0] != "X-Checksum" {
		t.Errorf("the client's Trailer fields are %q, want X-Checksum alone", announced)
	}
	if _, trailer, _ := strings.Cut(rest, "\r\n0\r\n"); !strings.HasPrefix(trailer, "X-Checksum: 42\r\n\r\n") {
		t.Errorf("the answer ends %q, want the trailer X-Checksum: 42 alone", rest)
	}
}

// rawGetX sends GET /x to f on a connection of its own and returns the
// facade's answer as the bytes it wrote, framing and trailer included.
func rawGetX(t *testing.T, f *facade) []byte {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	answer, _ := io.ReadAll(conn)
	return answer
}
