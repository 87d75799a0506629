package edge

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

//lint:file-ignore SA1019 x/net's HTTP/2 server is used on purpose: only its frame reader answers the reset guard's read error with GOAWAY (see ConfigureHTTP2).

// HTTP/2 limits of the TLS listeners.
const (
	maxConcurrentStreams = 100
	// A client may reset resetBurst streams at once, and resetRate more
	// each second after: a page navigation cancels a few requests, a
	// rapid reset attack thousands.
	resetBurst = 100
	resetRate  = 10
)

// ConfigureHTTP2 serves HTTP/2 on srv's TLS listeners with at most
// maxConcurrentStreams streams per connection, and a reset budget: the
// public listener's (NewServer) and the admin listener's.
//
// Go's HTTP/2 server bounds the handlers running at once per connection
// and the requests queued behind them (the CVE-2023-44487 fix), but a
// client that resets each stream right after opening it (HTTP/2 rapid
// reset) stays under both: every HEADERS still starts a request that may
// reach a backend before its RST_STREAM is read, and the connection is
// never closed. Neither net/http's HTTP2Config nor golang.org/x/net/http2
// counts the resets a client sends, so the facade watches the frames
// itself (resetGuard) and serves the connection with x/net's server, whose
// frame reader answers a read failing with an http2.ConnectionError with
// GOAWAY. (Were x/net's server to delegate to net/http's, as it plans to
// from Go 1.27, the connection would still be closed, without the GOAWAY;
// the edge's tests would say so.)
func ConfigureHTTP2(srv *http.Server) error {
	h2 := &http2.Server{MaxConcurrentStreams: maxConcurrentStreams}
	if err := http2.ConfigureServer(srv, h2); err != nil {
		return fmt.Errorf("http2: %w", err)
	}
	srv.TLSNextProto[http2.NextProtoTLS] = func(hs *http.Server, c *tls.Conn, h http.Handler) {
		opts := &http2.ServeConnOpts{Handler: h, BaseConfig: hs}
		// net/http hands its per-connection context (ConnContext) to the
		// HTTP/2 server this way; http2.ConfigureServer does the same.
		if bc, ok := h.(interface{ BaseContext() context.Context }); ok {
			opts.Context = bc.BaseContext()
		}
		h2.ServeConn(newResetGuard(c, time.Now), opts)
	}
	// No cleartext HTTP/2 (h2c): it would bypass these limits, and the
	// facade serves cleartext as HTTP/1 only.
	delete(srv.TLSNextProto, "unencrypted_http2")
	return nil
}

// resetGuard reads an HTTP/2 connection for its server, following the
// frames the client sends and the server writes. Each RST_STREAM the
// client sends spends one reset of the client's budget, and so does the
// server's first on a stream when it is for the client's error on it
// (clientsFault): a client that opens a stream and then breaks the
// protocol on it (a WINDOW_UPDATE of 0, DATA after the stream's end) has
// the server reset it for it, which starts and cancels requests as fast
// as resetting them itself ("MadeYouReset", CVE-2025-8671). When a client
// RST_STREAM finds the budget spent, the guard stops before that frame and
// fails the next read with ENHANCE_YOUR_CALM, so the server sends GOAWAY
// and closes the connection without reading further; when a server's
// reset spends it, the next read fails so, its bytes unread. Only the
// server's frame-reading goroutine calls Read; the server writes one
// frame at a time.
type resetGuard struct {
	*tls.Conn
	in  frames // the client's, after its preface
	out frames // the server's
	// reset holds the streams the server reset last. A client's DATA sent
	// before it learnt of the server's reset (of an upload answered before
	// it was read whole) gets the stream reset again, STREAM_CLOSED, once a
	// frame: those resets end no request and spend nothing. Twice the
	// streams a client may have open is room for every stream such DATA
	// can still be on its way to; one that fell out would count.
	reset  [2 * maxConcurrentStreams]uint32
	nreset int

	mu sync.Mutex // guards the budget: reads and writes spend it
	// tokens is the reset budget left, refilled at resetRate a second up
	// to resetBurst since last.
	tokens float64
	last   time.Time
	now    func() time.Time
	spent  atomic.Bool // a reset the server sent found the budget spent

	err error // once set, every read fails with it
}

func newResetGuard(c *tls.Conn, now func() time.Time) *resetGuard {
	return &resetGuard{Conn: c, in: frames{skip: clientPrefaceLen}, tokens: resetBurst, last: now(), now: now}
}

const clientPrefaceLen = len(http2.ClientPreface)

func (g *resetGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.Conn.Read(p)
	if g.spent.Load() {
		g.err = http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		return 0, g.err
	}
	if stop := g.fromClient(p[:n]); stop >= 0 {
		g.err = http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		if stop == 0 {
			return 0, g.err
		}
		return stop, nil
	}
	return n, err
}

// fromClient follows b, the next bytes from the client, and returns the
// offset of a RST_STREAM frame over budget, or -1.
func (g *resetGuard) fromClient(b []byte) int {
	return g.in.follow(b, func(uint32, http2.ErrCode) bool { return g.spend() })
}

func (g *resetGuard) Write(p []byte) (int, error) {
	// Followed before it is sent, so that reads stop as early as they can:
	// the server reads on while it writes.
	g.out.follow(p, func(stream uint32, code http2.ErrCode) bool {
		if clientsFault(code) && !slices.Contains(g.reset[:min(g.nreset, len(g.reset))], stream) && !g.spend() {
			g.spent.Store(true)
		}
		g.reset[g.nreset%len(g.reset)] = stream
		g.nreset++
		return true
	})
	return g.Conn.Write(p)
}

// clientsFault reports whether the server resets a stream with code for
// what the client sent on it. NO_ERROR (an answer sent before the body
// was read whole) and INTERNAL_ERROR (a handler that gave up, such as on
// a backend's broken answer) are the server's own; REFUSED_STREAM starts
// no request.
func clientsFault(code http2.ErrCode) bool {
	switch code {
	case http2.ErrCodeProtocol, http2.ErrCodeFlowControl, http2.ErrCodeStreamClosed, http2.ErrCodeFrameSize:
		return true
	}
	return false
}

// frames follows one direction of an HTTP/2 connection: it skips a
// preface, then reads each 9-byte frame header and skips the payload,
// all split across reads or writes anyhow.
type frames struct {
	skip    int     // preface bytes still to skip
	hdr     [9]byte // the frame header being read
	nhdr    int
	payload uint32 // payload bytes of the current frame still to skip
	// A RST_STREAM's error code, read from its payload; the frame began
	// at rstStart of the current bytes (negative: in earlier ones).
	code     [4]byte
	ncode    int
	rstStart int
	inRST    bool
}

// follow advances over b, the next bytes, and calls reset with each
// RST_STREAM frame's stream and error code once its payload's code is
// whole. When reset returns false, follow returns the offset in b where
// that frame began (0 if in earlier bytes); otherwise -1.
func (f *frames) follow(b []byte, reset func(stream uint32, code http2.ErrCode) bool) int {
	for i := 0; i < len(b); {
		switch {
		case f.skip > 0:
			k := min(f.skip, len(b)-i)
			f.skip -= k
			i += k
		case f.inRST:
			k := copy(f.code[f.ncode:], b[i:])
			f.ncode += k
			f.payload -= uint32(k)
			i += k
			if f.ncode == len(f.code) {
				f.inRST = false
				stream := binary.BigEndian.Uint32(f.hdr[5:]) & (1<<31 - 1)
				if !reset(stream, http2.ErrCode(binary.BigEndian.Uint32(f.code[:]))) {
					return max(f.rstStart, 0)
				}
			}
		case f.payload > 0:
			k := min(int(f.payload), len(b)-i)
			f.payload -= uint32(k)
			i += k
		default:
			start := i - f.nhdr // where the header began, maybe in earlier bytes
			k := copy(f.hdr[f.nhdr:], b[i:])
			f.nhdr += k
			i += k
			if f.nhdr < len(f.hdr) {
				continue
			}
			f.nhdr = 0
			f.payload = uint32(f.hdr[0])<<16 | uint32(binary.BigEndian.Uint16(f.hdr[1:3]))
			// A RST_STREAM's payload is its 4-byte code (RFC 9113 section
			// 6.4); the server refuses any other length as a connection
			// error, so a shorter one resets nothing.
			f.inRST = http2.FrameType(f.hdr[3]) == http2.FrameRSTStream && f.payload >= uint32(len(f.code))
			f.ncode, f.rstStart = 0, start
		}
	}
	if f.inRST {
		f.rstStart -= len(b)
	}
	return -1
}

// spend takes one reset from the budget and reports whether there was one.
func (g *resetGuard) spend() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	g.tokens = min(resetBurst, g.tokens+now.Sub(g.last).Seconds()*resetRate)
	g.last = now
	if g.tokens < 1 {
		return false
	}
	g.tokens--
	return true
}
