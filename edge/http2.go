package edge

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"net/http"
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
		h2.ServeConn(&resetGuard{Conn: c, tokens: resetBurst, last: time.Now(), now: time.Now}, opts)
	}
	// No cleartext HTTP/2 (h2c): it would bypass these limits, and the
	// facade serves cleartext as HTTP/1 only.
	delete(srv.TLSNextProto, "unencrypted_http2")
	return nil
}

// resetGuard reads an HTTP/2 connection for its server, following the
// frames the client sends: it skips the connection preface, then reads
// each 9-byte frame header and skips the payload. When a RST_STREAM frame
// finds the client's reset budget spent, the guard stops before that frame
// and fails the next read with ENHANCE_YOUR_CALM, so the server sends
// GOAWAY and closes the connection without reading further. Only the
// server's frame-reading goroutine calls Read.
type resetGuard struct {
	*tls.Conn
	skipped int     // bytes of the client preface skipped so far
	hdr     [9]byte // the frame header being read
	nhdr    int
	payload uint32 // payload bytes of the current frame still to skip

	// tokens is the reset budget left, refilled at resetRate a second up
	// to resetBurst since last.
	tokens float64
	last   time.Time
	now    func() time.Time

	err error // once set, every read fails with it
}

const clientPrefaceLen = len(http2.ClientPreface)

func (g *resetGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.Conn.Read(p)
	if stop := g.follow(p[:n]); stop >= 0 {
		g.err = http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		if stop == 0 {
			return 0, g.err
		}
		return stop, nil
	}
	return n, err
}

// follow advances over b, the next bytes from the client, and returns the
// offset of a RST_STREAM frame over budget, or -1.
func (g *resetGuard) follow(b []byte) int {
	for i := 0; i < len(b); {
		switch {
		case g.skipped < clientPrefaceLen:
			k := min(clientPrefaceLen-g.skipped, len(b)-i)
			g.skipped += k
			i += k
		case g.payload > 0:
			k := min(int(g.payload), len(b)-i)
			g.payload -= uint32(k)
			i += k
		default:
			start := i - g.nhdr // where the header began, maybe in an earlier read
			k := copy(g.hdr[g.nhdr:], b[i:])
			g.nhdr += k
			i += k
			if g.nhdr < len(g.hdr) {
				continue
			}
			g.nhdr = 0
			g.payload = uint32(g.hdr[0])<<16 | uint32(binary.BigEndian.Uint16(g.hdr[1:3]))
			if http2.FrameType(g.hdr[3]) == http2.FrameRSTStream && !g.spend() {
				return max(start, 0)
			}
		}
	}
	return -1
}

// spend takes one reset from the budget and reports whether there was one.
func (g *resetGuard) spend() bool {
	now := g.now()
	g.tokens = min(resetBurst, g.tokens+now.Sub(g.last).Seconds()*resetRate)
	g.last = now
	if g.tokens < 1 {
		return false
	}
	g.tokens--
	return true
}
