package upstream

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"sync"
	"sync/atomic"
	"time"
)

// direct sends the requests that need nothing else (no protocol upgrade,
// no body or one of at most maxDirectBody bytes, to a plain-http backend)
// over pooled HTTP/1.1 connections, writing the request and reading the
// response head on the calling goroutine. http.Transport hands every
// request to two goroutines per connection (one writes, one reads) and
// waits on channels for them: on loopback those wake-ups cost as much CPU
// as the proxying itself, and the goroutines' stacks are most of what an
// idle backend connection holds. Anything else goes through the
// transport, which has the machinery bodies, upgrades and TLS need.
type direct struct {
	host          string // the backend's host as request URLs spell it
	addr          string // host:port to dial
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
	headerTimeout time.Duration
	idleTimeout   time.Duration // the longest a connection waits idle (see keepFor)
	maxAge        time.Duration // the longest a connection is used (see release)

	// waiting counts the exchanges waiting for their answer.
	waiting atomic.Int64

	mu    sync.Mutex
	idle  []*directConn // most recently used last
	reap  *time.Timer   // closes connections idle for longer than idleTimeout
	alive bool          // reap is armed
}

// The pool's limits, as the transport's: more idle connections mostly hold
// memory after a burst.
const (
	directMaxIdle = 256
	// maxDirectBody is the largest request body the direct path sends: it
	// writes the body before it reads the answer, so a backend that answers
	// early (a 401 or 413) without reading the body must be able to leave
	// it in the sockets' buffers. A larger or streamed body goes through
	// the transport, which writes and reads at once.
	maxDirectBody = 64 << 10
	// minReapEvery is the shortest time between two looks for connections
	// idle too long, whatever idle_timeout says: one taken from the pool
	// is looked at then anyway, so the reaper only frees their sockets.
	minReapEvery = time.Second
	// bufferedWaits exchanges waiting for their answer at once may take
	// their read buffer before it comes (256 KiB in all): under a steady
	// load of up to that many requests in flight, none pays the look.
	bufferedWaits = 64
)

// writers are the buffers requests are written through: shared, as a
// connection needs one only while it writes a request head.
var writers = sync.Pool{New: func() any { return bufio.NewWriter(nil) }}

// readers are the buffers answers are read through: shared too, as a
// connection needs one only from the moment its answer arrives to the end
// of it. A connection idle in the pool holds none, nor does one waiting
// for its backend beyond the first bufferedWaits: in a burst of a
// thousand requests to a slow backend, that is 4 MiB less to hold, and
// twice that less for the garbage collector to let the heap grow to.
var readers = sync.Pool{New: func() any { return bufio.NewReader(nil) }}

// directConn is one pooled backend connection.
type directConn struct {
	conn  net.Conn
	limit limitedConn
	// br reads the answer, from when it arrives until the connection
	// goes back to the pool; nil before and after (see readers).
	br     *bufio.Reader
	idleAt time.Time
	born   time.Time // when it was dialed
	// keep is how long the connection may wait idle (see keepFor).
	keep time.Duration
	peek peeker // looks at the socket before the connection is reused
	// close closes conn; made once with the connection rather than for
	// each request cancelling it.
	close func()
	// deadline reports that a read deadline is set on conn: the head's,
	// which stands until a read of the body has to wait for the backend,
	// and which a connection back in the pool keeps, maybe past, until
	// its next exchange sets its own.
	deadline bool
}

// limitedConn reads from a connection, at most budget bytes while budget
// is positive, so that a response head has a size limit.
type limitedConn struct {
	net.Conn
	budget int64 // < 0: no limit
	// tape records a head larger than the read buffer as it is read,
	// for restoreConnection.
	tape tape
}

// errGarbled marks an exchange whose first response was not an HTTP
// response at all.
var errGarbled = errors.New("the backend's answer was not an HTTP response")

var errHeadTooLarge = fmt.Errorf("net/http: server response headers exceeded %d bytes; aborted", maxResponseHead)

func (c *limitedConn) Read(p []byte) (int, error) {
	if c.budget < 0 {
		return c.Conn.Read(p)
	}
	if c.budget == 0 {
		return 0, errHeadTooLarge
	}
	if int64(len(p)) > c.budget {
		p = p[:c.budget]
	}
	n, err := c.Conn.Read(p)
	c.budget -= int64(n)
	c.tape.record(p[:n])
	return n, err
}

// eligible reports whether req can take the direct path.
func (d *direct) eligible(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		if req.Body != nil && req.Body != http.NoBody {
			return false
		}
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		if req.Body != nil && req.Body != http.NoBody && (req.ContentLength <= 0 || req.ContentLength > maxDirectBody) {
			return false
		}
	default:
		return false
	}
	return req.URL.Scheme == "http" && req.URL.Host == d.host && !req.Close && req.Header["Upgrade"] == nil &&
		len(req.TransferEncoding) == 0 && req.Trailer == nil
}

// retriable reports whether req may be sent again when its pooled
// connection fails: a GET, HEAD or OPTIONS (they carry no body here). A
// write never is: the backend may have acted on it.
func retriable(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return false
}

// roundTrip sends req and returns the response, whose body releases the
// connection once read to its end. got1xx, when not nil, is given each
// informational response.
func (d *direct) roundTrip(req *http.Request, got1xx *relay) (*http.Response, error) {
	ctx := req.Context()
	for fresh := false; ; fresh = true {
		c, reused, err := d.get(ctx, fresh)
		if err != nil {
			return nil, err
		}
		resp, sent, err := d.exchange(ctx, c, req, got1xx)
		if err == nil {
			return resp, nil
		}
		// A pooled connection the backend had already closed fails before
		// any byte of an answer: the transport sends such a request again
		// (it has no body and is idempotent), and so does this, on a new
		// connection, since the other pooled ones may be closed too (the
		// backend restarted, or closes idle connections). So does a pooled
		// connection whose answer was no answer from its first byte: bytes
		// the backend wrote late for an earlier request (past a
		// Content-Length), which no look could see before they came; the
		// client gets its own answer, not a 502 for another's bytes.
		if reused && retriable(req) && (!sent || errors.Is(err, errGarbled)) && ctx.Err() == nil {
			continue
		}
		return nil, err
	}
}

// exchange writes req on c and reads the response head. sent reports
// whether the backend may have acted on the request: it answered
// something, or the connection failed otherwise than being found closed.
func (d *direct) exchange(ctx context.Context, c *directConn, req *http.Request, got1xx *relay) (_ *http.Response, sent bool, _ error) {
	// Cancelling the request closes the connection: a blocked write or
	// read returns at once.
	stop := context.AfterFunc(ctx, c.close)
	fail := func(err error) (*http.Response, bool, error) {
		stop()
		c.conn.Close()
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, true, fmt.Errorf("%w (%v)", ctxErr, err)
		}
		return nil, sent, err
	}
	held := heldInMemory(req.Body)
	heldWhole := held && heldLen(req.Body) == req.ContentLength
	var body *bodyReader
	if req.Body != nil && req.Body != http.NoBody {
		// The error of the body's read is the caller's (its client's
		// upload failed), not the backend's: it is returned as it was,
		// not in the wrapping req.Write gives it.
		body = &bodyReader{r: req.Body}
		req = req.WithContext(ctx)
		req.Body = body
	}
	bw := writers.Get().(*bufio.Writer)
	bw.Reset(c.conn)
	var err error
	if head, ok := appendHead(bw.AvailableBuffer(), req); ok {
		_, err = bw.Write(head)
	} else if head, ok := appendHeldHead(bw.AvailableBuffer(), req, heldWhole); ok {
		err = writeHeld(bw, head, req.Body, req.ContentLength)
	} else if held {
		err = req.Write(headWithBody{bw})
	} else {
		err = req.Write(bw)
	}
	if err == nil {
		err = bw.Flush()
	}
	bw.Reset(nil)
	writers.Put(bw)
	// writeErr is the error of a write the backend may have answered
	// anyway, before it read the whole body (a 401, a 413), and closed the
	// connection: its answer, if it is there to read, is the caller's.
	var writeErr error
	switch {
	case err == nil:
	case body != nil && body.err != nil:
		return fail(body.err)
	case body == nil || ctx.Err() != nil:
		return fail(err)
	default:
		writeErr, sent, err = err, true, nil
	}
	if d.headerTimeout > 0 {
		c.conn.SetReadDeadline(time.Now().Add(d.headerTimeout))
		c.deadline = true
	}
	// The budget covers every informational answer too, unless the caller
	// takes each one (as the transport counts them): a backend streaming
	// 103s cannot keep the facade reading.
	c.limit.budget = maxResponseHead
	// Only a connection that fails before a single byte of an answer was
	// found closed by the backend, and only then may the request go again
	// (as the transport decides): once anything came back, the backend
	// had the request.
	//
	// Waiting without a buffer costs a look at the socket, a system call,
	// and mostly the answer is there already: only the exchanges beyond
	// the first bufferedWaits waiting at once (a burst, a slow backend)
	// wait so.
	if d.waiting.Add(1) > bufferedWaits {
		err = c.awaitReadable()
	}
	if err == nil {
		c.br = readers.Get().(*bufio.Reader)
		c.br.Reset(&c.limit)
		_, err = c.br.Peek(1)
	}
	d.waiting.Add(-1)
	if err != nil && writeErr != nil {
		return fail(writeErr)
	}
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			sent = true
			err = fmt.Errorf("net/http: timeout awaiting response headers: %w", err)
		}
		return fail(err)
	}
	sent = true
	for first := true; ; first = false {
		head := bufferedHead(c.br)
		if head == nil {
			// Larger than the buffer: what it holds, and the rest as
			// it is read.
			b, _ := c.br.Peek(c.br.Buffered())
			c.limit.tape.start(b)
		}
		var resp *http.Response
		var err error
		if head != nil {
			resp = plainResponse(head, req)
		}
		plain := resp != nil
		if plain {
			c.br.Discard(len(head))
		} else {
			resp, err = http.ReadResponse(c.br, req)
		}
		if c.limit.tape.on {
			head = c.limit.tape.stop()
		}
		if err != nil && writeErr != nil {
			return fail(writeErr)
		}
		if err != nil {
			var ne net.Error
			switch {
			case errors.As(err, &ne) && ne.Timeout():
				err = fmt.Errorf("net/http: timeout awaiting response headers: %w", err)
			case first && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, errHeadTooLarge):
				err = fmt.Errorf("%w: %w", errGarbled, err)
			}
			return fail(err)
		}
		code := resp.StatusCode
		informational := code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols
		if resp.Close && resp.Header["Connection"] == nil {
			n := -1 // head holds this answer's head first
			if informational {
				n = 0
			}
			restoreConnection(resp.Header, head, n)
		}
		if informational {
			if got1xx != nil {
				if err := got1xx.got1xx(code, textproto.MIMEHeader(resp.Header)); err != nil {
					return fail(err)
				}
				c.limit.budget = maxResponseHead
			}
			continue
		}
		c.limit.budget = -1
		// The head's deadline is left to the body's reads (see
		// directBody.Read) and to release: mostly the body came with the
		// head, and no read of it waits.
		if resp.StatusCode == http.StatusSwitchingProtocols {
			// Not asked for (no Upgrade was sent): RoundTrip refuses
			// it, and the connection is in an unknown state.
			resp.Body = &directBody{body: http.NoBody, d: d, c: c, stop: stop}
			return resp, true, nil
		}
		keep := keepFor(resp, d.idleTimeout)
		if writeErr != nil || resp.TransferEncoding != nil && hasContentLength(head) {
			keep = 0
		}
		if plain && resp.ContentLength == 0 {
			resp.Body = http.NoBody
		}
		if resp.Body == http.NoBody {
			d.release(c, stop, keep)
			return resp, true, nil
		}
		b := &directBody{body: resp.Body, d: d, c: c, stop: stop, keep: keep, rest: resp.ContentLength}
		if plain {
			b.length = lengthBody{r: c.br, n: resp.ContentLength}
			b.body = &b.length
		}
		resp.Body = b
		return resp, true, nil
	}
}

// bufferedHead is the head of the response br reads next, when its
// buffer holds it whole, or nil: a head larger than the buffer (4 KiB), or
// one that ends in a read that fails (ReadResponse then fails the same
// way). It is read ahead for restoreConnection, and costs a look at
// bytes that mostly arrived in the read that began the answer.
func bufferedHead(br *bufio.Reader) []byte {
	for {
		b, _ := br.Peek(br.Buffered())
		// The head ends at an empty line; net/http takes a bare LF too,
		// looked for before the first CRLF one alone (not in the body).
		crlf := bytes.Index(b, []byte("\n\r\n"))
		in := b
		if crlf >= 0 {
			in = b[:crlf+1]
		}
		if lf := bytes.Index(in, []byte("\n\n")); lf >= 0 {
			return b[:lf+2]
		}
		if crlf >= 0 {
			return b[:crlf+3]
		}
		if len(b) == br.Size() {
			return nil
		}
		if _, err := br.Peek(len(b) + 1); err != nil {
			return nil
		}
	}
}

// hasContentLength reports whether head, an answer's head as received,
// has a Content-Length field. net/http reads an answer framed both ways,
// chunked and with a Content-Length, as chunked and deletes the field
// (RFC 9112 section 6.3); but the backend, or a proxy in front of it, may
// have meant the other framing, and what it sends past the chunked end
// was read as the next request's answer on the connection: a chunked
// "0" inside a Content-Length body ended the answer early, and the rest
// answered another client (found by the red team). Such an answer is
// served, and its connection carries no other, as Apache's mod_proxy
// does; Node.js refuses it.
func hasContentLength(head []byte) bool {
	const name = "Content-Length:"
	for len(head) > 0 {
		line, rest, _ := bytes.Cut(head, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return false // the end of the head
		}
		if len(line) >= len(name) && bytes.EqualFold(line[:len(name)], []byte(name)) {
			return true
		}
		head = rest
	}
	return false
}

// directBody is a response body on a pooled connection: read to its end,
// it gives the connection back; closed before, it closes it (the rest of
// the body would otherwise be read by the next request).
type directBody struct {
	body io.ReadCloser
	// length is body when the head was a plain one (plainResponse).
	length lengthBody
	d      *direct
	c      *directConn
	stop   func() bool
	keep   time.Duration // how long the connection may wait idle after it; 0: closed
	// timeout bounds each read as watchBody does, with a read deadline
	// (final sets it for a body of known length); 0: none.
	timeout time.Duration
	// rest is how many bytes of the body are still to be read; -1:
	// unknown (chunked, or until the connection ends).
	rest int64

	// done is set by whichever ends the body first: its end, which gives
	// the connection back, or Close, which closes it. Close may come from
	// another goroutine while a Read waits, and must not wait for it.
	done atomic.Bool
}

func (b *directBody) Read(p []byte) (int, error) {
	if b.done.Load() {
		return 0, io.EOF
	}
	// A read the buffer serves does not wait for the backend, and needs
	// no deadline: the head's stands. Setting and clearing one for the
	// head and again for the body cost each exchange about 2,000
	// instructions more (callgrind, router's BenchmarkServe).
	switch c := b.c; {
	case b.inMemory():
	case b.timeout > 0:
		c.conn.SetReadDeadline(time.Now().Add(b.timeout))
		c.deadline = true
	default:
		c.clearDeadline()
	}
	n, err := b.body.Read(p)
	if b.rest > 0 {
		b.rest -= int64(n)
	}
	switch {
	case err == io.EOF && b.done.CompareAndSwap(false, true):
		b.d.release(b.c, b.stop, b.keep)
	case b.timeout > 0 && err != nil && err != io.EOF && isTimeout(err):
		err = errBodyStalled
	}
	return n, err
}

// inMemory reports whether the rest of the body is in the connection's
// read buffer already, so that reading it to its end cannot wait.
func (b *directBody) inMemory() bool {
	return b.rest >= 0 && b.c.br != nil && int64(b.c.br.Buffered()) >= b.rest
}

// InMemory reports whether reading body to its end cannot wait for the
// backend: it is a body of known length the facade already holds whole
// (most small answers come with their head).
func InMemory(body io.Reader) bool {
	b, ok := body.(*directBody)
	return ok && !b.done.Load() && b.inMemory()
}

func (b *directBody) Close() error {
	if b.done.CompareAndSwap(false, true) {
		b.stop()
		b.c.conn.Close()
	}
	return nil
}

// isTimeout reports whether err is a deadline's.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// get returns an idle connection, or dials a new one (always when fresh);
// reused says which.
func (d *direct) get(ctx context.Context, fresh bool) (c *directConn, reused bool, err error) {
	d.mu.Lock()
	for !fresh && len(d.idle) > 0 {
		c = d.idle[len(d.idle)-1]
		d.idle[len(d.idle)-1] = nil
		d.idle = d.idle[:len(d.idle)-1]
		if time.Since(c.idleAt) < c.keep && !c.stale() {
			d.mu.Unlock()
			return c, true, nil
		}
		c.conn.Close()
	}
	d.mu.Unlock()
	conn, err := d.dial(ctx, "tcp", d.addr)
	if err != nil {
		return nil, false, err
	}
	c = &directConn{conn: conn, limit: limitedConn{Conn: conn, budget: -1}, born: time.Now()}
	c.close = func() { conn.Close() }
	c.peek.init(conn)
	return c, false, nil
}

// release ends an exchange on c: the connection goes back to the pool, to
// wait there for at most keep, if keep says it may and the request was not
// cancelled meanwhile (which closed it), else it is closed.
func (d *direct) release(c *directConn, stop func() bool, keep time.Duration) {
	// A connection waits idle no longer than it may still be used: one
	// older than maxAge is closed, here or when it is taken from the pool,
	// and the next exchange dials, resolving the backend's name again.
	now := time.Now()
	keep = min(keep, d.maxAge-now.Sub(c.born))
	if !stop() || keep <= 0 || c.br.Buffered() > 0 {
		c.conn.Close()
		return
	}
	// The head's read deadline, if it stands, stays: nothing reads the
	// connection until the next exchange sets its own, and the look
	// before reuse is no read (see stale). Clearing it here cost every
	// exchange a second change of the runtime's timer.
	//
	// The exchange is over: nothing reads through the buffer any more.
	c.br.Reset(nil)
	readers.Put(c.br)
	c.br = nil
	c.idleAt = now
	c.keep = keep
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.idle) >= directMaxIdle {
		c.conn.Close()
		return
	}
	d.idle = append(d.idle, c)
	if !d.alive {
		d.alive = true
		if d.reap == nil {
			d.reap = time.AfterFunc(max(d.idleTimeout, minReapEvery), d.reapIdle)
		} else {
			d.reap.Reset(max(d.idleTimeout, minReapEvery))
		}
	}
}

// clearDeadline clears the read deadline set on c, if any.
func (c *directConn) clearDeadline() {
	if c.deadline {
		c.conn.SetReadDeadline(time.Time{})
		c.deadline = false
	}
}

// reapIdle closes the connections idle for longer than they may be,
// and looks again later while any are left.
func (d *direct) reapIdle() {
	d.mu.Lock()
	defer d.mu.Unlock()
	kept := d.idle[:0]
	for _, c := range d.idle {
		if time.Since(c.idleAt) >= c.keep {
			c.conn.Close()
		} else {
			kept = append(kept, c)
		}
	}
	clear(d.idle[len(kept):])
	d.idle = kept
	d.alive = len(d.idle) > 0
	if d.alive {
		d.reap.Reset(max(d.idleTimeout/3, minReapEvery))
	}
}

// closeIdle closes every idle connection.
func (d *direct) closeIdle() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.idle {
		c.conn.Close()
	}
	clear(d.idle)
	d.idle = d.idle[:0]
}

// heldInMemory reports whether body is one Held made, under watchSend's
// watch or not: held whole in memory, no read of it waits.
func heldInMemory(body io.ReadCloser) bool {
	if w, ok := body.(*stallWatch); ok {
		body = w.ReadCloser
	}
	_, ok := body.(heldBody)
	return ok
}

// heldLen is how many bytes of body, one heldInMemory reports held, are
// left to read.
func heldLen(body io.ReadCloser) int64 {
	if w, ok := body.(*stallWatch); ok {
		body = w.ReadCloser
	}
	return int64(body.(heldBody).Len())
}

// writeHeld writes head and then body, n bytes held in memory, to bw,
// and closes body, as req.Write writes a request whose head is head: the
// body read through its wrappers (the send's stall watch sees each read),
// into bw's buffer, so that a body that fits goes in one write with the
// head.
func writeHeld(bw *bufio.Writer, head []byte, body io.ReadCloser, n int64) error {
	defer body.Close()
	if _, err := bw.Write(head); err != nil {
		return err
	}
	for n > 0 {
		if bw.Available() == 0 {
			if err := bw.Flush(); err != nil {
				return err
			}
		}
		p := bw.AvailableBuffer()
		p = p[:min(int64(cap(p)), n)]
		m, err := io.ReadFull(body, p)
		if _, werr := bw.Write(p[:m]); werr != nil {
			return werr
		}
		if err != nil {
			return err
		}
		n -= int64(m)
	}
	return nil
}

// headWithBody is the writer of a request whose body is held in memory:
// its head and body go out in one write. Request.Write sends the head on
// its own first (one more system call and packet) when it writes to a
// *bufio.Writer and does not know the body to be in memory (a
// *bytes.Reader, not under a wrapper such as bodyReader), in case the
// body's reads wait; headWithBody is none, and buffers as one.
type headWithBody struct{ *bufio.Writer }

// bodyReader is a request body as the direct path writes it, keeping the
// error of its read.
type bodyReader struct {
	r   io.ReadCloser
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

func (b *bodyReader) Close() error { return b.r.Close() }
