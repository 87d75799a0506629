package edge

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// received is what the inner handler saw of one request.
type received struct {
	method, target, body, trailer string
}

// backend is the handler behind SmugglingCheck. It refuses what Framing
// reports as the router does (400, Connection: close, the body unread),
// and records what else reaches it.
type backend struct {
	mu  sync.Mutex
	got []received
}

func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := Framing(r); err != nil {
		w.Header().Set("Connection", "close")
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	b.got = append(b.got, received{r.Method, r.RequestURI, string(body), r.Trailer.Get("X-Checksum")})
	b.mu.Unlock()
	fmt.Fprintf(w, "ok %s", r.RequestURI)
}

func (b *backend) received() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.got...)
}

// serve starts a real http.Server on loopback behind TrackFraming and
// SmugglingCheck, recording what reaches the inner handler.
func serve(t *testing.T) (string, *backend) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	be := &backend{}
	srv := &http.Server{
		Handler:           SmugglingCheck(be),
		ConnContext:       ConnContext,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go srv.Serve(TrackFraming(ln))
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), be
}

type client struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { conn.Close() })
	return &client{t, conn, bufio.NewReader(conn)}
}

func (c *client) send(raw string) {
	c.t.Helper()
	if _, err := io.WriteString(c.conn, raw); err != nil {
		c.t.Fatal(err)
	}
}

func (c *client) response() (*http.Response, string) {
	c.t.Helper()
	res, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.t.Fatalf("reading response: %v", err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Fatalf("reading response body: %v", err)
	}
	return res, string(body)
}

func (c *client) expectStatus(want int) string {
	c.t.Helper()
	res, body := c.response()
	if got := res.StatusCode; got != want {
		c.t.Fatalf("got status %d, want %d (body %q)", got, want, body)
	}
	return body
}

// expectClosed asserts the server hung up after its last response.
func (c *client) expectClosed() {
	c.t.Helper()
	if n, err := c.br.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		c.t.Errorf("got %d more bytes and error %v, want the server to close the connection", n, err)
	}
}

func expectReceived(t *testing.T, be *backend, want ...received) {
	t.Helper()
	got := be.received()
	if len(got) != len(want) {
		t.Fatalf("got %d requests at the handler %+v, want %d %+v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

const (
	rawGet     = "GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
	rawCLPost  = "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello world"
	rawChunked = "POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n" +
		"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: abc\r\n\r\n"
)

var (
	gotGet     = received{"GET", "/a", "", ""}
	gotCLPost  = received{"POST", "/b", "hello world", ""}
	gotChunked = received{"POST", "/c", "hello world", "abc"}
)

func TestWellFramedRequestsReachTheHandler(t *testing.T) {
	for _, tc := range []struct {
		name string
		raw  string
		want received
	}{
		{"a plain GET is forwarded", rawGet, gotGet},
		{"a Content-Length POST is forwarded with its body", rawCLPost, gotCLPost},
		{"a chunked POST is forwarded with its body and trailer", rawChunked, gotChunked},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, be := serve(t)
			c := dial(t, addr)
			c.send(tc.raw)
			c.expectStatus(http.StatusOK)
			expectReceived(t, be, tc.want)
		})
	}
}

func TestKeepAliveStaysInSyncAcrossBodyFramings(t *testing.T) {
	addr, be := serve(t)
	c := dial(t, addr)
	for _, raw := range []string{rawChunked, rawGet, rawCLPost, rawGet} {
		c.send(raw)
		c.expectStatus(http.StatusOK)
	}
	expectReceived(t, be, gotChunked, gotGet, gotCLPost, gotGet)
}

func TestPipelinedRequestsAreAnsweredInOrder(t *testing.T) {
	addr, be := serve(t)
	c := dial(t, addr)
	c.send(rawCLPost + rawChunked + rawGet)
	for _, want := range []string{"ok /b", "ok /c", "ok /a"} {
		if got := c.expectStatus(http.StatusOK); got != want {
			t.Errorf("got body %q, want %q", got, want)
		}
	}
	expectReceived(t, be, gotCLPost, gotChunked, gotGet)
}

func TestAmbiguousFramingIsRejectedAndNotForwarded(t *testing.T) {
	for _, tc := range []struct {
		name    string
		headers string
	}{
		{"Transfer-Encoding before Content-Length", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"},
		{"Content-Length before Transfer-Encoding", "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"},
		{"odd casing of both names", "transfer-ENCODING: chunked\r\ncontent-LENGTH: 5\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, be := serve(t)
			c := dial(t, addr)
			c.send("POST /smuggle HTTP/1.1\r\nHost: t\r\nX-Request-Id: req-42\r\n" + tc.headers + "\r\n0\r\n\r\n")
			res, body := c.response()
			if got, want := res.StatusCode, http.StatusBadRequest; got != want {
				t.Fatalf("got status %d, want %d", got, want)
			}
			if !strings.Contains(body, ErrAmbiguousFraming.Msg) {
				t.Errorf("got body %s, want the refusal's message", body)
			}
			if !res.Close {
				t.Errorf("got Connection %q, want close", res.Header.Get("Connection"))
			}
			expectReceived(t, be)
			c.expectClosed()
		})
	}
}

// TestTransferEncodingOnHTTP10IsRejected: net/http ignores
// Transfer-Encoding in an HTTP/1.0 request and reads no body, where a
// server honouring it reads the chunks as the body; RFC 9112 section 6.1
// calls that faulty framing. A chunked HTTP/1.0 write was served with an
// empty body (found by the red team).
func TestTransferEncodingOnHTTP10IsRejected(t *testing.T) {
	addr, be := serve(t)
	c := dial(t, addr)
	c.send("POST /smuggle HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n" + rawGet)
	res, body := c.response()
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Transfer-Encoding on HTTP/1.0") {
		t.Errorf("got %d %s, want 400 naming Transfer-Encoding on HTTP/1.0", res.StatusCode, body)
	}
	if !res.Close {
		t.Errorf("got Connection %q, want close", res.Header.Get("Connection"))
	}
	expectReceived(t, be)
	c.expectClosed()
}

func TestSmugglingAfterAGoodRequestOnOneConnection(t *testing.T) {
	addr, be := serve(t)
	c := dial(t, addr)
	c.send(rawGet)
	c.expectStatus(http.StatusOK)
	c.send("POST /smuggle HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
	c.expectStatus(http.StatusBadRequest)
	expectReceived(t, be, gotGet)
}

func TestDuplicateDifferingContentLengthIsRejected(t *testing.T) {
	addr, be := serve(t)
	c := dial(t, addr)
	c.send("POST /dup HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
	c.expectStatus(http.StatusBadRequest)
	expectReceived(t, be)
}

func TestChunkedBodyWrittenByteByByteStaysInSync(t *testing.T) {
	addr, be := serve(t)
	c := dial(t, addr)
	var body, wire strings.Builder
	for i := range 12 {
		chunk := strings.Repeat(string(rune('a'+i)), 3+i*4)
		body.WriteString(chunk)
		fmt.Fprintf(&wire, "%x;n=%d\r\n%s\r\n", len(chunk), i, chunk)
	}
	wire.WriteString("0\r\nX-Checksum: split\r\n\r\n")
	c.send("POST /slow HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
	for _, b := range []byte(wire.String()) {
		c.send(string(b))
	}
	c.expectStatus(http.StatusOK)
	c.send(rawGet)
	c.expectStatus(http.StatusOK)
	expectReceived(t, be, received{"POST", "/slow", body.String(), "split"}, gotGet)
}

func TestOptionsStarAnsweredByNetHTTPDoesNotShiftVerdicts(t *testing.T) {
	t.Run("a smuggling request after OPTIONS * is still rejected", func(t *testing.T) {
		addr, be := serve(t)
		c := dial(t, addr)
		c.send("OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n")
		c.expectStatus(http.StatusOK)
		c.send("POST /smuggle HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
		c.expectStatus(http.StatusBadRequest)
		expectReceived(t, be)
	})
	t.Run("a good request after OPTIONS * is still forwarded", func(t *testing.T) {
		addr, be := serve(t)
		c := dial(t, addr)
		c.send("OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n" + rawGet)
		c.expectStatus(http.StatusOK)
		c.expectStatus(http.StatusOK)
		expectReceived(t, be, gotGet)
	})
}

func TestUntrackedRequestsPassThrough(t *testing.T) {
	be := &backend{}
	r := httptest.NewRequest("POST", "/b", strings.NewReader("hello world"))
	r.Header.Set("Transfer-Encoding", "chunked")
	r.Header.Set("Content-Length", "11")
	w := httptest.NewRecorder()
	SmugglingCheck(be).ServeHTTP(w, r)
	if got, want := w.Code, http.StatusOK; got != want {
		t.Errorf("got status %d, want %d", got, want)
	}
	expectReceived(t, be, gotCLPost)
}

func TestFramerFollowsNetHTTPFraming(t *testing.T) {
	const ok, smug, opts = 0, entrySmuggling, entryOptionsStar
	for _, tc := range []struct {
		name             string
		stream           string
		want             []uint8
		stopped, tainted bool
	}{
		{name: "a GET and a Content-Length POST are both ok",
			stream: rawGet + rawCLPost, want: []uint8{ok, ok}},
		{name: "Content-Length with Transfer-Encoding is smuggling and framed chunked",
			stream: "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" + rawGet,
			want:   []uint8{smug, ok}},
		{name: "equal duplicate Content-Lengths are ok",
			stream: "POST / HTTP/1.1\r\nContent-Length: 3\r\ncontent-length:  3 \r\n\r\nabc" + rawGet,
			want:   []uint8{ok, ok}},
		{name: "differing Content-Lengths are smuggling and stop tracking",
			stream: "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 03\r\n\r\nabc" + rawGet,
			want:   []uint8{smug}, stopped: true},
		{name: "a folded Content-Length value is joined like net/http does",
			stream: "POST / HTTP/1.1\r\nContent-Length:\r\n 3\r\n\r\nabc" + rawGet,
			want:   []uint8{ok, ok}},
		{name: "a header name inside a folded value is not a header",
			stream: "GET / HTTP/1.1\r\nX-A: 1\r\n Content-Length: 4\r\n\r\n" + rawGet,
			want:   []uint8{ok, ok}},
		{name: "Transfer-Encoding on HTTP/1.0 is smuggling, and framed without a body as net/http does",
			stream: "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" + rawGet,
			want:   []uint8{smug, ok}},
		{name: "bare LF line endings are accepted in headers",
			stream: "POST / HTTP/1.1\nContent-Length: 2\n\nhiGET / HTTP/1.1\n\n",
			want:   []uint8{ok, ok}},
		{name: "stray CRLF between requests is skipped",
			stream: rawCLPost + "\r\n" + rawGet, want: []uint8{ok, ok}},
		{name: "chunk extensions and trailers keep the stream in sync",
			stream: rawChunked + rawGet, want: []uint8{ok, ok}},
		{name: "a bare LF after a chunk size stops tracking",
			stream: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n0\r\n\r\n" + rawGet,
			want:   []uint8{ok}, stopped: true},
		{name: "chunk data not followed by CRLF stops tracking",
			stream: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n" + rawGet,
			want:   []uint8{ok}, stopped: true},
		{name: "an unsupported transfer coding stops tracking",
			stream: "POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" + rawGet,
			want:   []uint8{ok}, stopped: true},
		{name: "an invalid Content-Length stops tracking",
			stream: "POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc" + rawGet,
			want:   []uint8{ok}, stopped: true},
		{name: "an HTTP/2 request line stops tracking",
			stream: "GET / HTTP/2.0\r\n\r\n" + rawGet, want: []uint8{ok}, stopped: true},
		{name: "the PRI preface is framed like HTTP/1.1",
			stream: "PRI * HTTP/2.0\r\n\r\n" + rawGet, want: []uint8{ok, ok}},
		{name: "OPTIONS * is marked as answered by net/http",
			stream: "OPTIONS * HTTP/1.1\r\n\r\n" + rawGet, want: []uint8{opts, ok}},
		{name: "an oversized header block taints the connection",
			stream: "GET / HTTP/1.1\r\nX-Big: " + strings.Repeat("x", maxBlock) + "\r\n\r\n",
			want:   []uint8{}, stopped: true, tainted: true},
		{name: "too many pending verdicts taint the connection",
			stream: strings.Repeat(rawGet, maxPending+1),
			want:   bytes.Repeat([]uint8{ok}, maxPending), stopped: true, tainted: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f framer
			f.feed([]byte(tc.stream))
			if got := f.queue[f.head:]; !bytes.Equal(got, tc.want) {
				t.Errorf("got entries %v, want %v", got, tc.want)
			}
			if got := f.state == stStopped; got != tc.stopped {
				t.Errorf("got stopped %v, want %v", got, tc.stopped)
			}
			if got := f.tainted; got != tc.tainted {
				t.Errorf("got tainted %v, want %v", got, tc.tainted)
			}
		})
	}
}

func TestNextVerdict(t *testing.T) {
	t.Run("OPTIONS * entries are skipped for other requests", func(t *testing.T) {
		f := framer{queue: []uint8{entryOptionsStar | entrySmuggling, 0}}
		if got, want := f.next(false), verdictOK; got != want {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("a stopped tracker answers unknown once drained", func(t *testing.T) {
		f := framer{state: stStopped, queue: []uint8{entrySmuggling}}
		if got, want := f.next(false), verdictSmuggling; got != want {
			t.Errorf("got %v, want %v", got, want)
		}
		if got, want := f.next(false), verdictUnknown; got != want {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("a tainted tracker answers smuggling for everything", func(t *testing.T) {
		f := framer{state: stStopped, tainted: true, queue: []uint8{0}}
		if got, want := f.next(false), verdictSmuggling; got != want {
			t.Errorf("got %v, want %v", got, want)
		}
	})
	t.Run("a live tracker with no verdict fails closed", func(t *testing.T) {
		var f framer
		if got, want := f.next(false), verdictSmuggling; got != want {
			t.Errorf("got %v, want %v", got, want)
		}
		if !f.tainted {
			t.Error("got an untainted tracker, want it tainted")
		}
	})
}

// blankLines counts LF followed by an empty line: every header block ends
// in one, so it bounds the number of verdicts a stream can yield.
func blankLines(p []byte) int {
	n := 0
	for i, c := range p {
		if c == '\n' && (bytes.HasPrefix(p[i+1:], []byte("\n")) || bytes.HasPrefix(p[i+1:], []byte("\r\n"))) {
			n++
		}
	}
	return n
}

func FuzzFraming(f *testing.F) {
	f.Add([]byte(rawGet+rawCLPost+rawChunked), uint8(1))
	f.Add([]byte("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), uint8(3))
	f.Add([]byte("POST / HTTP/1.0\nTransfer-Encoding: chunked\nContent-Length:\n 2\n\nhi\r\n\r\n"), uint8(7))
	f.Add([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nOPTIONS * HTTP/1.1\r\n\r\n"), uint8(0))
	f.Add([]byte("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n"), uint8(2))
	f.Fuzz(func(t *testing.T, stream []byte, step uint8) {
		var whole, split framer
		whole.feed(stream)
		n := int(step) + 1
		for p := stream; len(p) > 0; p = p[min(n, len(p)):] {
			split.feed(p[:min(n, len(p))])
		}
		got := whole.queue[whole.head:]
		if limit := blankLines(stream); len(got) > limit {
			t.Fatalf("got %d verdicts, want at most %d (one per header block)", len(got), limit)
		}
		if len(got) > maxPending {
			t.Fatalf("got %d pending verdicts, want at most %d", len(got), maxPending)
		}
		if !bytes.Equal(got, split.queue[split.head:]) || whole.state != split.state || whole.tainted != split.tainted {
			t.Fatalf("fed whole: entries %v state %d tainted %v; fed in %d-byte pieces: entries %v state %d tainted %v",
				got, whole.state, whole.tainted, n, split.queue[split.head:], split.state, split.tainted)
		}
		for range len(got) + 1 {
			whole.next(false)
		}
	})
}

// BenchmarkTrackedRead measures what tracking adds to each Read: 1 MiB
// bodies fed in 4 KiB reads, the size of net/http's read buffer.
func BenchmarkTrackedRead(b *testing.B) {
	const mib = 1 << 20
	var chunked bytes.Buffer
	chunked.WriteString("POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
	for range mib / 4096 {
		fmt.Fprintf(&chunked, "%x\r\n%s\r\n", 4096, bytes.Repeat([]byte("x"), 4096))
	}
	chunked.WriteString("0\r\n\r\n")
	cl := []byte(fmt.Sprintf("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n%s", mib, bytes.Repeat([]byte("x"), mib)))

	for _, bc := range []struct {
		name   string
		stream []byte
	}{
		{"chunked body in 4 KiB chunks", chunked.Bytes()},
		{"Content-Length body", cl},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.stream)))
			b.ReportAllocs()
			var c trackedConn
			for b.Loop() {
				for p := bc.stream; len(p) > 0; p = p[min(4096, len(p)):] {
					c.track(p[:min(4096, len(p))])
				}
				c.f.next(false)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)*mib/float64(len(bc.stream)), "ns/MiB")
		})
	}
}
