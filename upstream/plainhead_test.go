package upstream

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// plainHeads are answers plainResponse must read itself (plain) or leave
// to http.ReadResponse: each is read both ways where it reads it.
var plainHeads = []struct {
	name, answer string
	plain        bool
}{
	{"the bench's JSON answer", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}", true},
	{"no reason phrase", "HTTP/1.1 404\r\nContent-Length: 2\r\n\r\nno", true},
	{"an empty body", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true},
	{"a reason with spaces and tabs", "HTTP/1.1 503 Service  Unavailable\t\r\nContent-Length: 1\r\n\r\nx", true},
	{"values trimmed, inner spaces kept", "HTTP/1.1 200 OK\r\nX-A:   a  b \t\r\nX-B:\r\nX-C:\tc\r\nContent-Length:  3 \r\n\r\nabc", true},
	{"a repeated field in order", "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-One: 1\r\nSet-Cookie: b=2\r\nContent-Length: 0\r\n\r\n", true},
	{"a Keep-Alive hint", "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5, max=100\r\nContent-Length: 0\r\n\r\n", true},
	{"leading zeros in the length", "HTTP/1.1 200 OK\r\nContent-Length: 002\r\n\r\nok", true},
	{"a body cut short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabcd", true},
	{"more bytes than the length", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n", true},

	{"no length", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end", false},
	{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", false},
	{"chunked and a length", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n", false},
	{"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", false},
	{"two different lengths", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", false},
	{"a signed length", "HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nok", false},
	{"an empty length", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\nok", false},
	{"Connection: close", "HTTP/1.1 200 OK\r\nConnection: close, X-Secret\r\nX-Secret: s\r\nContent-Length: 0\r\n\r\n", false},
	{"Pragma: no-cache", "HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 0\r\n\r\n", false},
	{"a Trailer field", "HTTP/1.1 200 OK\r\nTrailer: X-T\r\nContent-Length: 0\r\n\r\n", false},
	{"a name not spelled canonically", "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nContent-Length: 0\r\n\r\n", false},
	{"a space before the colon", "HTTP/1.1 200 OK\r\nX-A : 1\r\nContent-Length: 0\r\n\r\n", false},
	{"a folded line", "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n", false},
	{"a bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", false},
	{"a bare CR in a value", "HTTP/1.1 200 OK\r\nX-A: 1\r2\r\nContent-Length: 0\r\n\r\n", false},
	{"a byte past ASCII", "HTTP/1.1 200 OK\r\nX-A: caf\xc3\xa9\r\nContent-Length: 0\r\n\r\n", false},
	{"HTTP/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false},
	{"two spaces after the version", "HTTP/1.1  200 OK\r\nContent-Length: 0\r\n\r\n", false},
	{"a status of four digits", "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", false},
	{"a 1xx", "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false},
	{"a 204", "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false},
	{"a 304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", false},
	{"a status below 200", "HTTP/1.1 099 Odd\r\nContent-Length: 0\r\n\r\n", false},
	{"not HTTP", "SSH-2.0-OpenSSH_9.6\r\n\r\n", false},
}

// A plain head is read as net/http reads it, every field of the response
// and the body's bytes and end alike; any other is left to net/http.
func TestPlainHeadsReadAsNetHTTPReadsThem(t *testing.T) {
	for _, tc := range plainHeads {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, "http://backend/x", nil)
			got, ok := readPlain(t, tc.answer, req)
			if ok != tc.plain {
				t.Fatalf("read as plain: %v, want %v", ok, tc.plain)
			}
			if ok {
				sameAsNetHTTP(t, tc.answer, req, got)
			}
		})
	}
	// A HEAD's answer has no body, whatever its Content-Length says.
	req, _ := http.NewRequest(http.MethodHead, "http://backend/x", nil)
	if _, ok := readPlain(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", req); ok {
		t.Error("a HEAD's answer read as plain")
	}
}

// FuzzPlainResponse holds plainResponse to net/http's reading for any
// bytes it takes as a plain head.
func FuzzPlainResponse(f *testing.F) {
	for _, tc := range plainHeads {
		f.Add(tc.answer)
	}
	f.Fuzz(func(t *testing.T, answer string) {
		req, _ := http.NewRequest(http.MethodGet, "http://backend/x", nil)
		if got, ok := readPlain(t, answer, req); ok {
			sameAsNetHTTP(t, answer, req, got)
		}
	})
}

// plainRead is what the direct path reads of an answer it takes as plain.
type plainRead struct {
	resp *http.Response
	body []byte
	err  error
	// last is how many bytes came with err.
	last int
}

// readPlain reads answer as the direct path does: its head, when
// bufferedHead finds it whole, by plainResponse, and the body from where
// the head ends.
func readPlain(t *testing.T, answer string, req *http.Request) (plainRead, bool) {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(answer))
	br.Peek(1)
	head := bufferedHead(br)
	if head == nil {
		return plainRead{}, false
	}
	resp := plainResponse(head, req)
	if resp == nil {
		return plainRead{}, false
	}
	br.Discard(len(head))
	body, last, err := readToEnd(&lengthBody{r: br, n: resp.ContentLength})
	return plainRead{resp, body, err, last}, true
}

// sameAsNetHTTP fails t unless got is what http.ReadResponse reads of
// answer.
func sameAsNetHTTP(t *testing.T, answer string, req *http.Request, got plainRead) {
	t.Helper()
	want, err := http.ReadResponse(bufio.NewReader(strings.NewReader(answer)), req)
	if err != nil {
		t.Fatalf("read as plain, but net/http fails it: %v", err)
	}
	wantBody, wantLast, wantErr := readToEnd(want.Body)
	if got.resp.ContentLength == 0 && want.Body != http.NoBody {
		t.Errorf("no body, but net/http's is %T", want.Body)
	}
	want.Body = nil
	if !reflect.DeepEqual(got.resp, want) {
		t.Errorf("got  %+v\nwant %+v", got.resp, want)
	}
	if !bytes.Equal(got.body, wantBody) || got.err != wantErr || got.last != wantLast {
		t.Errorf("body %q ending in %v with %d bytes, want %q ending in %v with %d", got.body, got.err, got.last, wantBody, wantErr, wantLast)
	}
	// A value appended to one field leaves every other as it was.
	for k := range got.resp.Header {
		got.resp.Header[k] = append(got.resp.Header[k], "appended")
		want.Header[k] = append(want.Header[k], "appended")
		if !reflect.DeepEqual(got.resp.Header, want.Header) {
			t.Fatalf("appended to %s, the header is %v, want %v", k, got.resp.Header, want.Header)
		}
	}
}

// readToEnd reads r, a byte at a time at first (each read alone, as a
// slow backend's arrive), until it fails, and returns what it read, how
// many bytes came with the error, and the error (net/http gives a body's last
// bytes with io.EOF, so that its reader may reuse the connection without
// another read), then checks that a read after it gives io.EOF.
func readToEnd(r io.Reader) ([]byte, int, error) {
	var out []byte
	buf := make([]byte, 1)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			if n, again := r.Read(buf); n != 0 || again != io.EOF {
				return out, n, again
			}
			return out, n, err
		}
		if len(out) > 2 {
			buf = make([]byte, 64)
		}
	}
}
