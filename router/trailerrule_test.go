package router

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// trailerNames is every name the two lists that decided which fields may
// be trailer fields held before they became one rule (router's
// notTrailer for a client's request trailer; upstream's
// httpguts.ValidTrailerHeader, hop-by-hop fields and responseControl for
// a backend's response trailer), with the sides that dropped it: neither
// side may pass again what it dropped then.
var trailerNames = []struct {
	name              string
	request, response bool
}{
	{"Age", false, true},
	{"Authorization", true, true},
	{"Cache-Control", true, true},
	{"Connection", true, true},
	{"Content-Encoding", true, true},
	{"Content-Length", true, true},
	{"Content-Location", false, true},
	{"Content-Range", true, true},
	{"Content-Type", true, true},
	{"Cookie", true, false},
	{"Date", true, true},
	{"Expect", true, true},
	{"Expires", false, true},
	{"Host", true, true},
	{"If-Match", true, true},
	{"If-Modified-Since", true, true},
	{"If-None-Match", true, true},
	{"If-Range", true, true},
	{"If-Unmodified-Since", true, true},
	{"Keep-Alive", true, true},
	{"Location", false, true},
	{"Max-Forwards", true, true},
	{"Pragma", true, true},
	{"Proxy-Authenticate", true, true},
	{"Proxy-Authorization", true, true},
	{"Proxy-Connection", true, true},
	{"Range", true, true},
	{"Realm", false, true},
	{"Retry-After", false, true},
	{"Set-Cookie", false, true},
	{"Te", true, true},
	{"Trailer", true, true},
	{"Transfer-Encoding", true, true},
	{"Upgrade", true, true},
	{"Vary", false, true},
	{"Www-Authenticate", true, true},
	{"X-Http-Method", true, false},
	{"X-Http-Method-Override", true, false},
	{"X-Method-Override", true, false},
	{"X-Request-Id", true, false},
}

// trailerLines is a trailer section holding every name of trailerNames,
// and X-Checksum, which may be a trailer field both ways.
func trailerLines() string {
	var b strings.Builder
	for _, n := range trailerNames {
		b.WriteString(n.name + ": v\r\n")
	}
	return b.String() + "X-Checksum: 42\r\n\r\n"
}

// TestNoTrailerFieldOnEitherListPassesEitherWay sends every name of
// trailerNames as a trailer field, from a client through the facade to a
// backend and from a backend through the facade to a client, the
// facade's answer read as bytes: each side drops the names it dropped
// before the two lists became one rule, and passes X-Checksum.
func TestNoTrailerFieldOnEitherListPassesEitherWay(t *testing.T) {
	var mu sync.Mutex
	var got http.Header
	requests := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // which fills r.Trailer
		mu.Lock()
		got = r.Trailer.Clone()
		mu.Unlock()
	}))
	t.Cleanup(requests.Close)
	answers := rawAnswer(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"+trailerLines())
	f := newFacade(t, requests.URL, answers, "", `  - {name: in, match: "POST /in", mode: legacy}
  - {name: out, match: "GET /out", mode: modern}`)

	exchange := func(request string) string {
		conn, err := net.Dial("tcp", strings.TrimPrefix(f.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(conn, request)
		answer, _ := io.ReadAll(conn)
		return string(answer)
	}

	answer := exchange("POST /in HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nok\r\n0\r\n" + trailerLines())
	mu.Lock()
	request := got
	mu.Unlock()
	if !strings.HasPrefix(answer, "HTTP/1.1 200 ") || request.Get("X-Checksum") != "42" {
		t.Fatalf("the backend got the trailer %v; want X-Checksum 42 (answer %q)", request, answer)
	}
	answer = exchange("GET /out HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	_, response, found := strings.Cut(answer, "\r\n0\r\n")
	if !found || !strings.Contains(response, "\r\nX-Checksum: 42\r\n") && !strings.HasPrefix(response, "X-Checksum: 42\r\n") {
		t.Fatalf("answer %q, want a chunked body ending in the trailer X-Checksum", answer)
	}
	for _, n := range trailerNames {
		if _, ok := request[n.name]; ok && n.request {
			t.Errorf("the backend got the request trailer field %s", n.name)
		}
		if strings.Contains("\r\n"+response, "\r\n"+n.name+":") && n.response {
			t.Errorf("the client got the response trailer field %s", n.name)
		}
	}
}
