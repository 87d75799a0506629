// Package edge owns the public listener's defences: connection-level
// HTTP/1 framing checks against request smuggling, TLS and HTTP/2 limits,
// and the answer to a refusal whose body was not read; the admin
// listener shares the last two.
package edge

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"

	"strangler/edge/canonical"
)

const (
	// maxBlock bounds one header block, trailer block or chunk-size line.
	// It is what net/http reads for a header block under its default
	// MaxHeaderBytes, so with default server settings anything longer has
	// already been refused (431) before a handler runs. Beyond it the
	// tracker fails closed rather than buffering on.
	maxBlock = http.DefaultMaxHeaderBytes + 4096

	// maxPending bounds verdicts parsed but not yet claimed by a handler.
	// net/http reads at most one 4 KiB buffer ahead of the request it
	// serves, which holds fewer than 300 of the smallest valid requests, so
	// a longer queue means tracker and server no longer agree.
	maxPending = 1024
)

// verdict is the tracker's judgement of one request's framing.
type verdict uint8

const (
	verdictOK verdict = iota
	verdictSmuggling
	// verdictUnknown means the tracker stopped following the connection
	// because it met bytes it could not frame (a bad chunk size, an invalid
	// Content-Length, an unsupported Transfer-Encoding or HTTP version).
	// net/http refuses those same bytes and closes the connection, so no
	// later request on it reaches a handler; unknown is treated as ok.
	verdictUnknown
)

// Queue entries are bit sets.
const (
	entrySmuggling = 1 << iota
	// entryOptionsStar marks "OPTIONS *", which net/http answers itself
	// (unless Server.DisableGeneralOptionsHandler is set) without calling
	// the handler, while keeping the connection open.
	entryOptionsStar
)

type state uint8

const (
	stIdle      state = iota // between messages, skipping stray CR/LF
	stHeader                 // in a request header block
	stBody                   // skipping a Content-Length body
	stChunkSize              // in a chunk-size line
	stChunkData              // skipping chunk data
	stChunkEnd               // in the CRLF after chunk data
	stTrailer                // in the trailer block after the last chunk
	stStopped                // no longer tracking: see framer.tainted
)

type fieldKind uint8

const (
	fieldNone fieldKind = iota // no header field yet in this block
	fieldOther
	fieldCL
	fieldTE
)

// block holds what the framer learnt about the current header block.
type block struct {
	firstLine   bool
	http10      bool // net/http ignores Transfer-Encoding on HTTP/1.0
	optionsStar bool
	unframeable bool      // net/http will refuse this block and close
	field       fieldKind // the last field, which a folded line extends
	value       []byte    // value of the last field if CL or TE
	clCount     int
	clFirst     []byte
	clLen       uint64
	clBad       bool
	clDiffer    bool
	teCount     int
	teChunked   bool
}

// framer follows HTTP/1.x request framing over a byte stream, mirroring
// net/http's server, and queues one verdict entry per header block.
type framer struct {
	state   state
	partial []byte // start of a line split across reads
	used    int    // bytes of the current block or chunk-size line
	remain  uint64 // body or chunk-data bytes still to skip
	crlf    int    // bytes of the CRLF after chunk data seen so far
	blk     block

	queue   []uint8
	head    int
	tainted bool // every later verdict is smuggling
}

// feed advances the framer over p, the next bytes of the stream. It works
// a line at a time in header blocks and skips body bytes arithmetically.
func (f *framer) feed(p []byte) {
	for len(p) > 0 {
		switch f.state {
		case stStopped:
			return
		case stIdle:
			// net/http skips a few CR/LF after a POST body and refuses
			// (and closes on) any others, so skipping them all is safe.
			for len(p) > 0 && (p[0] == '\r' || p[0] == '\n') {
				p = p[1:]
			}
			if len(p) > 0 {
				f.blk = block{firstLine: true, value: f.blk.value[:0], clFirst: f.blk.clFirst[:0]}
				f.state, f.used = stHeader, 0
			}
		case stBody, stChunkData:
			n := min(uint64(len(p)), f.remain)
			p, f.remain = p[n:], f.remain-n
			if f.remain == 0 && f.state == stBody {
				f.state = stIdle
			} else if f.remain == 0 {
				f.state, f.crlf = stChunkEnd, 0
			}
		case stChunkEnd:
			if p[0] != "\r\n"[f.crlf] { // net/http wants exactly CRLF here
				f.stop(false)
				return
			}
			p, f.crlf = p[1:], f.crlf+1
			if f.crlf == 2 {
				f.state, f.used = stChunkSize, 0
			}
		default:
			var line []byte
			var ok bool
			if line, p, ok = f.line(p); !ok {
				continue
			}
			switch f.state {
			case stHeader:
				f.headerLine(trimCR(line))
			case stChunkSize:
				f.chunkSizeLine(line)
			case stTrailer:
				if len(trimCR(line)) == 0 {
					f.state = stIdle
				}
			}
		}
	}
}

// line returns the next complete line of p without its LF, joined to any
// start of it carried over from earlier reads, and the bytes after it. The
// line is only valid until the next call.
func (f *framer) line(p []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(p, '\n')
	n := i + 1
	if i < 0 {
		n = len(p)
	}
	if f.used += n; f.used > maxBlock {
		f.stop(true)
		return nil, nil, false
	}
	if i < 0 {
		f.partial = append(f.partial, p...)
		return nil, nil, false
	}
	line, rest = p[:i], p[i+1:]
	if len(f.partial) > 0 {
		line = append(f.partial, line...)
		f.partial = line[:0]
		if cap(f.partial) > 64<<10 {
			f.partial = nil // do not hold a huge line's buffer for the conn's life
		}
	}
	return line, rest, true
}

func (f *framer) headerLine(line []byte) {
	b := &f.blk
	switch {
	case b.firstLine:
		b.firstLine = false
		f.requestLine(line)
	case len(line) == 0:
		f.endField()
		f.endBlock()
	case line[0] == ' ' || line[0] == '\t':
		// An obs-fold line: net/http appends it to the previous field with
		// one space, and refuses one before any field.
		if b.field == fieldNone {
			b.unframeable = true
		} else if b.field != fieldOther {
			b.value = append(append(b.value, ' '), trimOWS(line)...)
		}
	default:
		f.endField()
		i := bytes.IndexByte(line, ':')
		name, value := line[:max(i, 0)], line[i+1:]
		switch {
		case i < 0:
			b.unframeable, b.field = true, fieldOther
		case equalFoldASCII(name, "content-length"):
			b.field = fieldCL
		case equalFoldASCII(name, "transfer-encoding"):
			b.field = fieldTE
		default:
			b.field = fieldOther
		}
		if b.field == fieldCL || b.field == fieldTE {
			b.value = append(b.value[:0], trimOWS(value)...)
		}
	}
}

// requestLine splits the line as net/http does and notes what changes the
// framing: HTTP/1.0 (Transfer-Encoding ignored) and anything net/http
// refuses outright.
func (f *framer) requestLine(line []byte) {
	b := &f.blk
	method, rest, ok1 := bytes.Cut(line, []byte(" "))
	target, proto, ok2 := bytes.Cut(rest, []byte(" "))
	b.optionsStar = string(method) == "OPTIONS" && string(target) == "*"
	switch {
	case !ok1 || !ok2:
		b.unframeable = true
	case len(proto) == 8 && string(proto[:7]) == "HTTP/1." && '0' <= proto[7] && proto[7] <= '9':
		b.http10 = proto[7] == '0'
	case string(method) == "PRI" && string(target) == "*" && string(proto) == "HTTP/2.0":
		// net/http serves the HTTP/2 preface as a request with HTTP/1.1
		// framing, so handlers can take over the connection.
	default:
		b.unframeable = true // net/http answers 400 or 505 and closes
	}
}

// endField records the last CL or TE field once no folded line can extend it.
func (f *framer) endField() {
	b := &f.blk
	switch b.field {
	case fieldCL:
		v := trimOWS(b.value)
		if b.clCount++; b.clCount == 1 {
			b.clFirst = append(b.clFirst[:0], v...)
			b.clLen, b.clBad = parseDecimal(v)
		} else if !bytes.Equal(v, b.clFirst) {
			b.clDiffer = true
		}
	case fieldTE:
		b.teCount++
		b.teChunked = equalFoldASCII(b.value, "chunked")
	}
}

// endBlock queues the block's verdict and picks the body framing.
func (f *framer) endBlock() {
	b := &f.blk
	var e uint8
	// Transfer-Encoding in an HTTP/1.0 request is faulty framing even
	// without Content-Length (RFC 9112 section 6.1): net/http ignores it
	// and reads no body, so a chunked dual write was served and journaled
	// empty, its chunks read as the next request (found by the red team).
	if b.clCount > 0 && b.teCount > 0 || b.clDiffer || b.http10 && b.teCount > 0 {
		e |= entrySmuggling
	}
	if b.optionsStar {
		e |= entryOptionsStar
	}
	if f.push(e); f.state == stStopped {
		return
	}
	chunked := b.teCount > 0 && !b.http10
	switch {
	case b.unframeable || b.clDiffer:
		f.stop(false)
	case chunked && (b.teCount != 1 || !b.teChunked):
		f.stop(false) // net/http supports only one "chunked" and answers 501
	case chunked:
		f.state, f.used = stChunkSize, 0
	case b.clCount > 0 && b.clBad:
		f.stop(false)
	case b.clCount > 0 && b.clLen > 0:
		f.state, f.remain = stBody, b.clLen
	default:
		f.state = stIdle
	}
}

func (f *framer) chunkSizeLine(line []byte) {
	// net/http wants CRLF here and no other CR, trims trailing spaces,
	// drops extensions and takes at most 16 hex digits.
	if len(line) == 0 || bytes.IndexByte(line, '\r') != len(line)-1 {
		f.stop(false)
		return
	}
	size, _, _ := bytes.Cut(bytes.TrimRight(line[:len(line)-1], " \t"), []byte(";"))
	n, ok := parseHex(size)
	switch {
	case !ok:
		f.stop(false)
	case n == 0:
		f.state, f.used = stTrailer, 0
	default:
		f.state, f.remain = stChunkData, n
	}
}

func (f *framer) push(e uint8) {
	if len(f.queue)-f.head >= maxPending {
		f.stop(true)
		return
	}
	if f.head > 0 && len(f.queue) == cap(f.queue) {
		f.queue = f.queue[:copy(f.queue, f.queue[f.head:])]
		f.head = 0
	}
	f.queue = append(f.queue, e)
}

// stop ends tracking; taint makes every later verdict smuggling.
func (f *framer) stop(taint bool) {
	f.state = stStopped
	f.tainted = f.tainted || taint
	f.partial, f.blk = nil, block{}
}

// next pops the verdict for the request a handler is about to serve.
// optionsStar reports whether that request is "OPTIONS *".
func (f *framer) next(optionsStar bool) verdict {
	for !f.tainted && f.head < len(f.queue) {
		e := f.queue[f.head]
		if f.head++; f.head == len(f.queue) {
			f.queue, f.head = f.queue[:0], 0
		}
		if e&entryOptionsStar != 0 && !optionsStar {
			continue // net/http answered it without calling the handler
		}
		if e&entrySmuggling != 0 {
			return verdictSmuggling
		}
		return verdictOK
	}
	switch {
	case f.tainted:
		return verdictSmuggling
	case f.state == stStopped:
		return verdictUnknown
	}
	// Still tracking, yet the server found a request where the tracker
	// saw none: the two disagree about framing, which is what smuggling
	// exploits. Fail closed.
	f.stop(true)
	return verdictSmuggling
}

// TrackFraming wraps l so that each accepted connection follows the
// HTTP/1.x request framing of the bytes the server reads, judging every
// request header block for smuggling. Pair it with [ConnContext] and
// [SmugglingCheck].
//
// The connections must carry plaintext HTTP/1: wrap the listener the
// http.Server reads requests from, not one beneath TLS. Once a handler
// hijacks a connection (an upgrade), the tracker sees tunnelled bytes;
// they are parsed as garbage until it gives up, which is harmless because
// no further verdict is claimed.
func TrackFraming(l net.Listener) net.Listener {
	return trackingListener{l}
}

type trackingListener struct{ net.Listener }

func (l trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &trackedConn{Conn: c}, nil
}

// trackedConn feeds everything read from it to a framer before the
// server sees it, so a request's verdict is queued before its handler runs.
type trackedConn struct {
	net.Conn
	mu sync.Mutex // guards f: the server reads in the background while a handler pops
	f  framer
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.track(p[:n])
	return n, err
}

func (c *trackedConn) track(p []byte) {
	if len(p) > 0 {
		c.mu.Lock()
		c.f.feed(p)
		c.mu.Unlock()
	}
}

func (c *trackedConn) next(optionsStar bool) verdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.f.next(optionsStar)
}

// ReadFrom keeps net/http's sendfile/splice path for responses; writes
// are not tracked.
func (c *trackedConn) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(c.Conn, r)
}

// CloseWrite lets net/http half-close before closing after an error
// response, so the client reads the response instead of a reset.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

type connKey struct{}

// ConnContext is meant for http.Server.ConnContext: it stores c in ctx
// if c came from a [TrackFraming] listener, so [SmugglingCheck] finds it.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*trackedConn); ok {
		return context.WithValue(ctx, connKey{}, tc)
	}
	return ctx
}

// ErrAmbiguousFraming is the refusal of a request whose header block had
// both Content-Length and Transfer-Encoding, differing Content-Length
// fields, or Transfer-Encoding in an HTTP/1.0 request: servers may
// disagree on where its body ends, and what one reads as the body another
// reads as the next request. It is answered with "Connection: close", as
// nothing after it on the connection can be trusted.
var ErrAmbiguousFraming = &canonical.Refusal{Status: http.StatusBadRequest,
	Msg: "ambiguous request framing: Content-Length with Transfer-Encoding, differing Content-Length headers, or Transfer-Encoding on HTTP/1.0"}

type ambiguousKey struct{}

// SmugglingCheck marks a request whose framing is ambiguous, for
// [Framing] to report, and passes every request to next, which must refuse
// a marked one before reading its body or reaching a backend: the router
// does, at the one place it refuses requests, so that the refusal is
// counted, logged and answered with the request's id like any other.
// Requests not on a tracked connection (HTTP/2, plain listeners) are never
// marked.
//
// net/http serves one HTTP/1 connection's requests strictly in order, so
// taking the oldest verdict matches it to its request. When the server
// refuses a request before any handler runs (431, a bad Content-Length),
// that verdict is never claimed and the queue falls out of step, but the
// server closes the connection after such an error, so nothing follows.
func SmugglingCheck(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := r.Context().Value(connKey{}).(*trackedConn)
		// HTTP/2 requests on a tracked conn (h2c prior knowledge) have no
		// verdicts; the PRI preface request does.
		tracked := ok && (r.ProtoMajor == 1 || r.Method == "PRI")
		if tracked && c.next(r.Method == "OPTIONS" && r.RequestURI == "*") == verdictSmuggling {
			r = r.WithContext(context.WithValue(r.Context(), ambiguousKey{}, true))
		}
		next.ServeHTTP(w, r)
	})
}

// Framing returns ErrAmbiguousFraming for a request [SmugglingCheck]
// marked, ErrBadContentLength for an HTTP/2 request whose content-length
// fields are not one decimal number, ErrBodyNotSent for one whose stream
// ended before the body its content-length declares, and nil for any
// other.
func Framing(r *http.Request) error {
	if r.Context().Value(ambiguousKey{}) != nil {
		return ErrAmbiguousFraming
	}
	if cl, ok := r.Header["Content-Length"]; ok && r.ProtoMajor == 2 {
		// Go's HTTP/2 server reads a content-length it cannot parse
		// ("abc", "5, 5") as 0 and serves the request: a POST of "hello"
		// sent with "content-length: abc" reached a backend as a complete
		// POST without a body and its client got the backend's 200, its
		// body lost (found by the red team). HTTP/1's server refuses it.
		for _, v := range cl {
			if _, bad := parseDecimal([]byte(v)); bad || v != cl[0] {
				return ErrBadContentLength
			}
		}
		// It reads a request whose stream ended with its headers as one
		// without a body, whatever its content-length says (RFC 9113
		// section 8.1.1 calls it malformed): a POST declaring 7 bytes
		// and sending none reached the primary as a complete empty POST
		// and was journaled, where HTTP/1's server waits for the 7 bytes
		// (found by the red team). Otherwise the server has taken the
		// length as declared and holds the body to it.
		if n, _ := parseDecimal([]byte(cl[0])); n != uint64(r.ContentLength) {
			return ErrBodyNotSent
		}
	}
	return nil
}

// ErrBadContentLength refuses an HTTP/2 request whose content-length
// fields are not one decimal number.
var ErrBadContentLength = &canonical.Refusal{Status: http.StatusBadRequest,
	Msg: "the content-length is not one decimal number"}

// ErrBodyNotSent refuses an HTTP/2 request whose content-length declares
// a body its stream ended without.
var ErrBodyNotSent = &canonical.Refusal{Status: http.StatusBadRequest,
	Msg: "the content-length declares a body, and the request ended without one"}

func trimCR(b []byte) []byte { return bytes.TrimSuffix(b, []byte("\r")) }

func trimOWS(b []byte) []byte { return bytes.Trim(b, " \t") }

// equalFoldASCII reports whether b equals lower, a lower-case ASCII name,
// ignoring ASCII case only (net/http rejects non-token header names).
func equalFoldASCII(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// parseDecimal parses a Content-Length as net/http does: digits only, at
// most 2^63-1. bad reports anything else, including empty.
func parseDecimal(b []byte) (n uint64, bad bool) {
	const limit = 1<<63 - 1
	for _, c := range b {
		if c < '0' || c > '9' || n > (limit-uint64(c-'0'))/10 {
			return 0, true
		}
		n = n*10 + uint64(c-'0')
	}
	return n, len(b) == 0
}

func parseHex(b []byte) (n uint64, ok bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | uint64(c)
	}
	return n, true
}
