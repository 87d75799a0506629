package router

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"sync"
	"time"
)

// The ways a client's request body fails. Each is the client's doing, so
// the client gets a 4xx, never a backend's 502.
var (
	errBodyIncomplete = errors.New("request body incomplete")
	errBodyTimeout    = errors.New("request body stalled for body_timeout")
	errBodyOverMax    = errors.New("request body exceeds max_body")
)

// errMalformedChunks stands for net/http's error about a chunked body or
// trailer it could not parse, which quotes what the client sent there.
var errMalformedChunks = errors.New("malformed chunked encoding or trailer")

// unquoted is what the refusal's log line may say of err, an error
// reading a client's body: net/http quotes with %q a trailer line that is
// no header field (perhaps a patient's name), and keeps its own words
// before; such an error is errMalformedChunks.
func unquoted(err error) error {
	var pe textproto.ProtocolError
	if errors.As(err, &pe) || strings.Contains(err.Error(), `"`) {
		return errMalformedChunks
	}
	return err
}

// clientBody is a client's request body as the facade reads it: each read
// waits at most body_timeout for a byte, the body holds at most max_body
// bytes, and the first failure is kept, so that an exchange it broke is
// answered as the client's fault (400, 408, 413).
//
// A backend that was streamed part of a body that then fails sees an
// incomplete message, never a shorter complete one: the failure reaches the
// transport as a read error, and Go's transport then closes the connection
// (HTTP/1: no last chunk, or fewer bytes than Content-Length) or resets the
// stream (HTTP/2).
type clientBody struct {
	body    io.ReadCloser
	w       http.ResponseWriter
	timeout time.Duration
	limit   int64 // 0: unlimited
	// trailer is the request's trailer map, which the server fills as the
	// body ends; cleanTrailer drops from it what no backend may read there,
	// before the end of the body is read and a backend is sent the map.
	trailer      http.Header
	cleanTrailer func(http.Header)
	// declared is the request's Content-Length, -1 if unknown; peek reads
	// past it (see Read).
	declared int64
	peek     [1]byte

	// mu guards the rest: the transport reads the body on its own
	// goroutine, the stall timer fires on another, and the handler settles
	// the body when the request ends.
	mu      sync.Mutex
	n       int64
	timer   *time.Timer
	reading bool
	stalled bool
	ended   bool
	err     error
	// whole is when the body's end was read: from then on the backend
	// had the whole request (see exchange.gaveUpOnModern).
	whole time.Time
}

// wrap puts req's body behind b. The stall timer only runs while a
// read waits for the client: a backend slow to take the body is not the
// client's fault. clean is called on req's trailer fields once they came.
func (b *clientBody) wrap(req *http.Request, w http.ResponseWriter, timeout time.Duration, limit int64, clean func(http.Header)) {
	b.body, b.w, b.timeout, b.limit = req.Body, w, timeout, limit
	b.trailer, b.cleanTrailer = req.Trailer, clean
	b.declared = req.ContentLength
	req.Body = b
}

func (b *clientBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	switch {
	case b.err != nil:
		b.mu.Unlock()
		return 0, b.err
	case b.ended:
		// The handler returned; net/http forbids reading on.
		b.mu.Unlock()
		return 0, http.ErrBodyReadAfterClose
	}
	b.reading = true
	if b.timer == nil {
		b.timer = time.AfterFunc(b.timeout, b.stall)
	} else {
		b.timer.Reset(b.timeout)
	}
	b.mu.Unlock()

	n, err := b.body.Read(p)
	if err == nil && n > 0 && b.n+int64(n) == b.declared {
		// The transport sends no more than Content-Length and would have
		// sent these last bytes, a complete message, before reading on:
		// an HTTP/2 request declaring 5 bytes and sending "hello" and
		// "world" in two DATA frames (malformed, RFC 9113 section
		// 8.1.1) reached a backend as a complete "hello" while its client
		// got a stream reset (found by the red team). So the end is read
		// before they go: more bytes, or a failure, is a broken body.
		var more int
		if more, err = b.body.Read(b.peek[:]); more > 0 {
			err = errors.New("more bytes than Content-Length")
		}
		if err != nil && err != io.EOF {
			n = 0
		}
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	b.reading = false
	b.timer.Stop()
	b.n += int64(n)
	switch {
	case b.stalled:
		b.err = errBodyTimeout
	case b.limit > 0 && b.n > b.limit:
		b.err = errBodyOverMax
	case err != nil && err != io.EOF:
		b.err = fmt.Errorf("%w: %w", errBodyIncomplete, unquoted(err))
	default:
		if err == io.EOF && b.whole.IsZero() {
			b.whole = time.Now()
		}
		if err == io.EOF && len(b.trailer) > 0 {
			b.cleanTrailer(b.trailer)
		}
		return n, err
	}
	return n, b.err
}

// Close closes the client's body; net/http closes it again when the
// request ends.
func (b *clientBody) Close() error { return b.body.Close() }

// stall ends the read that has waited body_timeout for the client. A
// deadline in the past makes it return at once: Go's HTTP/1 server sets it
// on the connection, its HTTP/2 server on the stream alone.
func (b *clientBody) stall() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.reading || b.ended {
		return
	}
	b.stalled = true
	http.NewResponseController(b.w).SetReadDeadline(time.Unix(1, 0))
}

// end settles the body when the request ends: no later timer may touch the
// connection, which may then serve another request.
func (b *clientBody) end() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ended = true
	if b.timer != nil {
		b.timer.Stop()
	}
}

// readWhole is when the body's end was read, and whether it was.
func (b *clientBody) readWhole() (time.Time, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.whole, !b.whole.IsZero()
}

// failure is why reading the body failed, or nil.
func (b *clientBody) failure() error {
	if b.body == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// shareTrailer gives a chunked HTTP/1 request a trailer map before anything
// copies the request. net/http fills the trailer fields that follow the
// body into the map req.Trailer held when the body began (only those a
// Trailer header declared), or, if it held none, into a new map set on
// req itself, which no copy of req sees: the fields were lost on the way
// to the backend (found by the red team). HTTP/2 keeps declared fields
// alone, in the map it set.
func shareTrailer(req *http.Request) {
	if req.Trailer == nil && len(req.TransferEncoding) > 0 {
		req.Trailer = http.Header{}
	}
}
