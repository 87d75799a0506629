package edge

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"strangler/internal/testcert"
	"strangler/internal/testkit"
)

// h2Server serves h with NewServer over TLS on loopback and returns its
// address.
func h2Server(t *testing.T, h http.Handler) string {
	t.Helper()
	ca := testcert.NewAuthority(t)
	certFile, keyFile := ca.Files("server")
	ca.Issue(t, 1, certFile, keyFile, "127.0.0.1")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cert, err := LoadCertificate(certFile, keyFile, log)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(h, log)
	if err != nil {
		t.Fatal(err)
	}
	srv.TLSConfig = TLSConfig(cert)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// h2Client is a raw HTTP/2 client connection: frames written and read
// one by one, as an attacker would.
type h2Client struct {
	conn   *tls.Conn
	w, r   *http2.Framer
	wmu    sync.Mutex
	hbuf   bytes.Buffer
	hpack  *hpack.Encoder
	frames chan http2.Frame // frames read, closed when the connection ends
	// end is why reading ended; set before frames is closed.
	end error
}

func dialH2(t *testing.T, addr string) *h2Client {
	t.Helper()
	conn := testkit.DialH2(t, addr, nil, 60*time.Second)
	c := &h2Client{conn: conn, w: http2.NewFramer(conn, nil), r: http2.NewFramer(io.Discard, conn), frames: make(chan http2.Frame, 64)}
	c.hpack = hpack.NewEncoder(&c.hbuf)
	if err := c.w.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.frames)
		for {
			f, err := c.r.ReadFrame()
			if err != nil {
				c.end = err
				return
			}
			if s, ok := f.(*http2.SettingsFrame); ok && !s.IsAck() {
				c.wmu.Lock()
				c.w.WriteSettingsAck()
				c.wmu.Unlock()
			}
			c.frames <- copyFrame(f)
		}
	}()
	return c
}

// copyFrame keeps what the tests look at of f: a Framer reuses frames.
func copyFrame(f http2.Frame) http2.Frame {
	if g, ok := f.(*http2.GoAwayFrame); ok {
		return &http2.GoAwayFrame{FrameHeader: g.FrameHeader, LastStreamID: g.LastStreamID, ErrCode: g.ErrCode}
	}
	return &http2.UnknownFrame{FrameHeader: f.Header()}
}

// request opens stream id with a GET of path and, if reset, resets it at
// once. It reports whether the writes went through.
func (c *h2Client) request(id uint32, path string, reset bool) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.open(id, "GET", path, true) {
		return false
	}
	return !reset || c.w.WriteRSTStream(id, http2.ErrCodeCancel) == nil
}

// open writes the HEADERS of a request of method and path on stream id,
// ending the stream if end. The caller holds wmu.
func (c *h2Client) open(id uint32, method, path string, end bool) bool {
	c.hbuf.Reset()
	for _, f := range [][2]string{{":method", method}, {":scheme", "https"}, {":authority", "facade"}, {":path", path}} {
		c.hpack.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return c.w.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: c.hbuf.Bytes(), EndStream: end, EndHeaders: true}) == nil
}

// data writes a DATA frame of one byte on stream id.
func (c *h2Client) data(id uint32) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.w.WriteData(id, false, []byte("x")) == nil
}

// goAway waits for the server's GOAWAY, or for the connection to end.
func (c *h2Client) goAway() *http2.GoAwayFrame {
	for f := range c.frames {
		if g, ok := f.(*http2.GoAwayFrame); ok {
			return g
		}
	}
	return nil
}

func TestHTTP2RapidResetGetsGoAwayAndTheConnectionClosed(t *testing.T) {
	var started atomic.Int64
	addr := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
	}))
	start := time.Now()
	c := dialH2(t, addr)
	// 20,000 HEADERS + RST_STREAM pairs, as fast as the connection takes
	// them, while the frames that come back are read.
	done := make(chan int)
	go func() {
		sent := 0
		for i := range 20000 {
			if !c.request(uint32(2*i+1), "/x", true) {
				break
			}
			sent++
		}
		done <- sent
	}()
	g := c.goAway()
	took := time.Since(start)
	sent := <-done
	if g == nil {
		t.Fatalf("the connection ended without GOAWAY after %d reset streams", sent)
	}
	if g.ErrCode != http2.ErrCodeEnhanceYourCalm {
		t.Errorf("GOAWAY code = %v, want ENHANCE_YOUR_CALM", g.ErrCode)
	}
	for range c.frames {
	}
	if ne, ok := c.end.(net.Error); ok && ne.Timeout() {
		t.Errorf("the server kept the connection open after GOAWAY")
	}
	// Each stream the client reset within its budget started a request,
	// and so did the one whose reset spent it: the budget refilled while
	// the attack went on, and one more.
	if n, most := started.Load(), int64(resetBurst+resetRate*took.Seconds()+1); n > most {
		t.Errorf("%d requests started in %v, want at most %d: the reset budget and one more", n, took, most)
	}
	t.Logf("%d pairs written before the connection closed, %d requests started", sent, started.Load())
}

// TestHTTP2StreamsTheServerResetsForTheClientsErrorsSpendTheBudget sends
// what makes the server reset a stream the client opened (the "MadeYouReset"
// variant of rapid reset, CVE-2025-8671): each stream starts a request,
// then a frame the protocol forbids on it gets it reset by the server, so
// the client never sends RST_STREAM itself. Such resets spend the client's
// budget as its own do.
func TestHTTP2StreamsTheServerResetsForTheClientsErrorsSpendTheBudget(t *testing.T) {
	for _, c := range []struct {
		name  string
		after func(w *http2.Framer, id uint32) error
	}{
		{"a WINDOW_UPDATE of 0", func(w *http2.Framer, id uint32) error { return w.WriteWindowUpdate(id, 0) }},
		{"DATA after the end of the stream", func(w *http2.Framer, id uint32) error { return w.WriteData(id, false, []byte("x")) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var started atomic.Int64
			addr := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				started.Add(1)
				<-r.Context().Done() // a backend still working on it
			}))
			start := time.Now()
			cl := dialH2(t, addr)
			cl.w.AllowIllegalWrites = true
			// Batches of 50 streams, each batch's resets awaited before the
			// next, so that the server's queue of frames to send stays short.
			const batch, most = 50, 1000
			var g *http2.GoAwayFrame
			id := uint32(1)
		attack:
			for id < 2*most {
				for range batch {
					if !cl.request(id, "/x", false) {
						break attack
					}
					cl.wmu.Lock()
					err := c.after(cl.w, id)
					cl.wmu.Unlock()
					if err != nil {
						break attack
					}
					id += 2
				}
				for resets := 0; resets < batch; {
					f, ok := <-cl.frames
					if !ok {
						break attack
					}
					if g, _ = f.(*http2.GoAwayFrame); g != nil {
						break attack
					}
					if f.Header().Type == http2.FrameRSTStream {
						resets++
					}
				}
			}
			took := time.Since(start)
			if g == nil {
				t.Fatalf("no GOAWAY after %d streams the server reset (connection ended: %v)", id/2, cl.end)
			}
			if g.ErrCode != http2.ErrCodeEnhanceYourCalm {
				t.Errorf("GOAWAY code = %v, want ENHANCE_YOUR_CALM", g.ErrCode)
			}
			// The server reads on while its resets wait to be written: the
			// streams of the batch it had read by then may start too.
			if n, most := started.Load(), int64(resetBurst+resetRate*took.Seconds()+batch); n > most {
				t.Errorf("%d requests started in %v, want at most %d: the reset budget and one batch of %d", n, took, most, batch)
			}
		})
	}
}

// TestHTTP2UploadsAnsweredBeforeTheirEndSpendNoResets sends uploads the
// server answers, and resets (NO_ERROR), before reading them whole, each
// followed by a DATA frame that was on its way when the reset came: the
// server resets the stream again for it (STREAM_CLOSED), yet the client
// did nothing wrong and ended no request of its own.
func TestHTTP2UploadsAnsweredBeforeTheirEndSpendNoResets(t *testing.T) {
	addr := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusRequestEntityTooLarge)
	}))
	c := dialH2(t, addr)
	next := func(id uint32) { // waits for the server's reset of stream id
		for f := range c.frames {
			switch f := f.(type) {
			case *http2.GoAwayFrame:
				t.Fatalf("GOAWAY (%v) while answering uploads before their end", f.ErrCode)
			case *http2.UnknownFrame:
				if f.Type == http2.FrameRSTStream && f.StreamID == id {
					return
				}
			}
		}
		t.Fatalf("the connection ended: %v", c.end)
	}
	for i := range 3 * resetBurst {
		id := uint32(2*i + 1)
		c.wmu.Lock()
		ok := c.open(id, "POST", "/up", false)
		c.wmu.Unlock()
		if !ok || !c.data(id) {
			t.Fatalf("stream %d: the connection was closed", id)
		}
		next(id)
		if !c.data(id) {
			t.Fatalf("stream %d: the connection was closed", id)
		}
	}
	last := uint32(6*resetBurst + 1)
	if !c.request(last, "/last", false) {
		t.Fatal("the connection was closed")
	}
	for f := range c.frames {
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY (%v) after uploads answered before their end", f.ErrCode)
		case *http2.UnknownFrame:
			if f.Type == http2.FrameHeaders && f.StreamID == last {
				return
			}
		}
	}
	t.Fatalf("the connection ended before the last request was answered: %v", c.end)
}

func TestHTTP2ResetsWithinTheBudgetKeepTheConnection(t *testing.T) {
	var served atomic.Int64
	addr := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		if r.URL.Path == "/last" {
			w.WriteHeader(http.StatusTeapot)
		}
	}))
	c := dialH2(t, addr)
	for i := range resetBurst / 2 {
		if !c.request(uint32(2*i+1), "/x", true) {
			t.Fatalf("stream %d: the connection was closed", 2*i+1)
		}
	}
	last := uint32(resetBurst + 1)
	if !c.request(last, "/last", false) {
		t.Fatal("the connection was closed")
	}
	for f := range c.frames {
		switch f := f.(type) {
		case *http2.GoAwayFrame:
			t.Fatalf("GOAWAY (%v) after %d resets, within the budget of %d", f.ErrCode, resetBurst/2, resetBurst)
		case *http2.UnknownFrame:
			if f.Type == http2.FrameHeaders && f.StreamID == last {
				return // the request after the resets was answered
			}
		}
	}
	t.Fatal("the connection ended before the last request was answered")
}

func TestHTTP2AdvertisesAHundredStreams(t *testing.T) {
	addr := h2Server(t, http.NotFoundHandler())
	conn := testkit.DialH2(t, addr, nil, 10*time.Second)
	fr := http2.NewFramer(conn, conn)
	fr.WriteSettings()
	f, err := fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	s, ok := f.(*http2.SettingsFrame)
	if !ok {
		t.Fatalf("first frame %v, want SETTINGS", f)
	}
	if v, ok := s.Value(http2.SettingMaxConcurrentStreams); !ok || v != maxConcurrentStreams {
		t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS = %d (sent: %v), want %d", v, ok, maxConcurrentStreams)
	}
}

// TestResetGuardFollowsFramesSplitAnyhow feeds the guard a stream of frames
// in reads of every size and checks it stops at the same frame: the one
// RST_STREAM past the budget.
func TestResetGuardFollowsFramesSplitAnyhow(t *testing.T) {
	var stream bytes.Buffer
	stream.WriteString(http2.ClientPreface)
	fr := http2.NewFramer(&stream, nil)
	fr.WriteSettings()
	// A frame longer than 16 bits can count: the server takes frames up to
	// http2.Server's 1 MiB, and a length misread would hide the resets.
	fr.WriteData(1, false, bytes.Repeat([]byte{'x'}, 70000))
	var over int // offset of the RST_STREAM frame over budget
	for i := range resetBurst + 5 {
		fr.WriteData(uint32(2*i+1), false, bytes.Repeat([]byte{'x'}, i)) // payloads of every size
		if i == resetBurst {
			over = stream.Len()
		}
		fr.WriteRSTStream(uint32(2*i+1), http2.ErrCodeCancel)
	}
	all := stream.Bytes()
	for _, size := range []int{1, 2, 7, 9, 10, 64, 4096} {
		g := newResetGuard(nil, func() time.Time { return time.Unix(0, 0) })
		got := -1
		for off := 0; off < len(all) && got < 0; off += size {
			if stop := g.fromClient(all[off:min(off+size, len(all))]); stop >= 0 {
				got = off + stop
			}
		}
		// A frame split across reads is stopped at the start of the read
		// that completes its error code: the server has the start of the
		// frame, never the whole of it.
		if got < over || got > over+12 {
			t.Errorf("reads of %d bytes: stopped at %d, want the frame at %d", size, got, over)
		}
	}
}

func TestTheResetBudgetRefills(t *testing.T) {
	now := time.Unix(0, 0)
	g := newResetGuard(nil, func() time.Time { return now })
	for i := range resetBurst {
		if !g.spend() {
			t.Fatalf("reset %d refused, want %d in a burst", i+1, resetBurst)
		}
	}
	if g.spend() {
		t.Fatalf("reset %d allowed in the same instant", resetBurst+1)
	}
	now = now.Add(time.Second)
	for i := range resetRate {
		if !g.spend() {
			t.Fatalf("reset %d of the second after refused, want %d a second", i+1, resetRate)
		}
	}
	if g.spend() {
		t.Fatalf("reset %d of the second after allowed, want %d a second", resetRate+1, resetRate)
	}
}

// TestHTTP2MalformedRequestsReachNoHandler pins what Go's HTTP/2 server
// refuses before the facade sees a request, as the README lists it: a
// host field differing from :authority, a :path without its leading
// slash, an upper-case field name, a pseudo-header after a regular
// field, a CR, LF or NUL in a field value and a :method that is no token
// (which an HTTP/1.1 backend would read as more of the request) reset the
// stream; a connection-specific field is answered 400.
func TestHTTP2MalformedRequestsReachNoHandler(t *testing.T) {
	var reached atomic.Int64
	addr := h2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
	}))
	get := func(path string, more ...[2]string) [][2]string {
		return append([][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "facade"}, {":path", path}}, more...)
	}
	for _, c := range []struct {
		name   string
		fields [][2]string
		want   http2.FrameType
	}{
		{"a host differing from :authority", get("/a", [2]string{"host", "other.example"}), http2.FrameRSTStream},
		{"two host fields", get("/a", [2]string{"host", "facade"}, [2]string{"host", "facade"}), http2.FrameRSTStream},
		{"a :path without a leading slash", get("a"), http2.FrameRSTStream},
		{"an upper-case field name", get("/a", [2]string{"X-Upper", "1"}), http2.FrameRSTStream},
		{"a pseudo-header after a regular field", [][2]string{{":method", "GET"}, {":scheme", "https"}, {"x-a", "1"}, {":authority", "facade"}, {":path", "/a"}}, http2.FrameRSTStream},
		{"a Connection field", get("/a", [2]string{"connection", "keep-alive"}), http2.FrameHeaders},
		{"an Upgrade field", get("/a", [2]string{"upgrade", "h2c"}), http2.FrameHeaders},
		{"a TE other than trailers", get("/a", [2]string{"te", "gzip"}), http2.FrameHeaders},
		{"a CR LF in a field value", get("/a", [2]string{"x-a", "1\r\nx-b: 2"}), http2.FrameRSTStream},
		{"a NUL in a field value", get("/a", [2]string{"x-a", "1\x00"}), http2.FrameRSTStream},
		{"a :method that is no token", [][2]string{{":method", "GET /b HTTP/1.1\r\n"}, {":scheme", "https"}, {":authority", "facade"}, {":path", "/a"}}, http2.FrameRSTStream},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := dialH2(t, addr)
			cl.wmu.Lock()
			cl.hbuf.Reset()
			for _, f := range c.fields {
				cl.hpack.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
			}
			err := cl.w.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: cl.hbuf.Bytes(), EndStream: true, EndHeaders: true})
			cl.wmu.Unlock()
			if err != nil {
				t.Fatal(err)
			}
			var got http2.FrameType
			for f := range cl.frames {
				if f.Header().StreamID == 1 {
					got = f.Header().Type
					break
				}
			}
			if got != c.want {
				t.Errorf("stream 1 got %v (connection ended: %v), want %v", got, cl.end, c.want)
			}
		})
	}
	if n := reached.Load(); n != 0 {
		t.Errorf("%d requests reached the handler, want none", n)
	}
}
