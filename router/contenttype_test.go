package router

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestAnAnswerWithoutContentTypeGetsNone: net/http's server gives a
// response without Content-Type one it sniffs from the body; a backend's
// HTML-looking answer without one (and with X-Content-Type-Options:
// nosniff, so that no browser sniffs it) reached the client as
// text/html, which a browser renders, script and all. The client gets
// the backend's header as it was, on every mode, after 1xx responses too.
func TestAnAnswerWithoutContentTypeGetsNone(t *testing.T) {
	const page = "<html><script>alert(1)</script></html>"
	untyped := rawAnswer(t, "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"+
		"HTTP/1.1 200 OK\r\nX-Content-Type-Options: nosniff\r\nContent-Length: 38\r\n\r\n"+page)
	typed := rawAnswer(t, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
	for _, mode := range []string{"legacy", "fallback", "shadow"} {
		t.Run(mode, func(t *testing.T) {
			f := newFacade(t, untyped, untyped, "", `  - {name: x, match: "GET /x", mode: `+mode+`}`)
			f2 := newFacade(t, typed, typed, "", `  - {name: y, match: "GET /y", mode: `+mode+`}`)
			if head := rawGet(t, f.URL, "/x"); strings.Contains(head, "\r\nContent-Type:") || !strings.HasSuffix(head, page) {
				t.Errorf("the client got %q, want the page without a Content-Type", head)
			}
			if head := rawGet(t, f2.URL, "/y"); !strings.Contains(head, "Content-Type: application/json\r\n") {
				t.Errorf("the client got %q, want the backend's Content-Type", head)
			}
		})
	}
}

// rawGet sends GET path to the facade at url over a connection of its
// own and returns the answer's bytes.
func rawGet(t *testing.T, url, path string) string {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	answer, _ := io.ReadAll(conn)
	return string(answer)
}
