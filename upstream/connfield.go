package upstream

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"time"
)

// Every path that reads a backend's answer (the direct path, the transport
// over plain http or https) keeps the bytes of its head as received, so
// that restoreConnection can give back the Connection field net/http's
// response reader deletes on reading "close" in it: the fields named
// there beside "close" are connection-specific too, and the forwarder
// must drop them (RFC 9110 section 7.6.1). Without it "Connection: close,
// X-Secret" brought X-Secret to the client wherever the facade's look at
// the head could not reach: through the transport (a HEAD, a large body,
// an https backend) and past the direct path's 4 KiB read buffer (found by
// the red team).

// maxTape bounds the bytes a tape keeps: an answer's 1xx responses (at
// most maxHeldInformationalSize of fields, and their lines) and its final
// head (at most maxResponseHead), with room for the lines around them. A
// head past it is refused by the reader anyway.
const maxTape = maxHeldInformationalSize + maxResponseHead + 8<<10

// tape records the bytes read from a connection while it runs.
type tape struct {
	on bool
	b  []byte
}

// start begins recording, with prior, bytes already read.
func (t *tape) start(prior []byte) {
	t.on = true
	t.b = append(t.b[:0], prior...)
}

// record keeps p, within maxTape, while the tape runs.
func (t *tape) record(p []byte) {
	if t.on && len(t.b) < maxTape {
		t.b = append(t.b, p[:min(len(p), maxTape-len(t.b))]...)
	}
}

// stop ends recording and returns what was recorded: the tape keeps no
// buffer (a connection that got one large head may idle long).
func (t *tape) stop() []byte {
	b := t.b
	t.on, t.b = false, nil
	return b
}

// tapConn is a connection the transport reads answers from, recording
// them while a request armed it (see Upstream.viaTransport). The
// transport reads on a goroutine of its own, hence the lock.
type tapConn struct {
	net.Conn
	mu   sync.Mutex
	tape tape
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.mu.Lock()
		c.tape.record(p[:n])
		c.mu.Unlock()
	}
	return n, err
}

// arm starts recording what the connection reads from now on: a request
// is about to be written on it.
func (c *tapConn) arm() {
	c.mu.Lock()
	c.tape.start(nil)
	c.mu.Unlock()
}

// take stops recording and returns what was recorded.
func (c *tapConn) take() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tape.stop()
}

// viaTransport sends req through the transport, whose connections are
// tapConns, and restores the Connection field of an answer that asked to
// close its connection from the head the connection recorded.
func (u *Upstream) viaTransport(req *http.Request) (*http.Response, error) {
	u.sweep()
	var tap *tapConn
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		if tap != nil {
			tap.take() // an attempt on another connection that failed
		}
		if tap, _ = info.Conn.(*tapConn); tap != nil {
			tap.arm()
		}
	}}
	if outer := httptrace.ContextClientTrace(req.Context()); outer != nil && outer.Got1xxResponse != nil {
		// Only when a caller takes the 1xx answers: a hook of its own
		// would stop the transport counting them. This one runs before
		// the caller's, on the goroutine reading the connection, and
		// gives it the header with the field restored.
		n := 0
		trace.Got1xxResponse = func(_ int, h textproto.MIMEHeader) error {
			if tap != nil && h["Connection"] == nil {
				tap.mu.Lock()
				restoreConnection(http.Header(h), tap.tape.b, n)
				tap.mu.Unlock()
			}
			n++
			return nil
		}
	}
	ctx := httptrace.WithClientTrace(req.Context(), trace)
	if req.Header.Get("Upgrade") != "" {
		ctx = context.WithValue(ctx, onlyHTTP1{}, true)
	}
	resp, err := u.transport.RoundTrip(req.WithContext(ctx))
	if tap == nil {
		return resp, err // HTTP/2, which has no Connection field
	}
	heads := tap.take()
	if err == nil && resp.Close && resp.Header["Connection"] == nil {
		restoreConnection(resp.Header, heads, -1)
	}
	return resp, err
}

// onlyHTTP1 marks the context of a request asking to switch protocols
// (a WebSocket upgrade), which Go's transport sends over HTTP/1.1 on a
// connection of its own: an upgrade has no place in HTTP/2. Its own TLS
// dial then offers the backend no h2, and dialTLSTapped must do the same:
// offered h2, a backend that speaks it took it, and the transport sent
// the upgrade over HTTP/2, which refused it (502 for every WebSocket to
// such an https backend, found by the red team). Any Upgrade marks it, a
// superset of the transport's rule (Connection naming upgrade, Upgrade:
// websocket): a connection dialed without h2 for a request the transport
// would not send alone serves it, and those after it, over HTTP/1.1.
type onlyHTTP1 struct{}

// dialTapped dials the transport's connections to a plain-http backend.
func dialTapped(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &tapConn{Conn: conn}, nil
	}
}

// dialTLSTapped dials the transport's connections to an https backend,
// as the transport would with cfg and handshakeTimeout, and taps those
// that speak HTTP/1.1. One that negotiated HTTP/2 stays a *tls.Conn, which
// the transport needs to see to speak HTTP/2 on it.
func dialTLSTapped(dial func(ctx context.Context, network, addr string) (net.Conn, error), cfg *tls.Config, handshakeTimeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c := &tls.Config{}
		if cfg != nil {
			c = cfg.Clone()
		}
		if c.ServerName == "" {
			c.ServerName, _, _ = net.SplitHostPort(addr)
		}
		switch {
		case ctx.Value(onlyHTTP1{}) != nil:
			c.NextProtos = nil // as the transport's own dial does
		case c.NextProtos == nil:
			c.NextProtos = []string{"h2", "http/1.1"}
		}
		if handshakeTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, handshakeTimeout)
			defer cancel()
		}
		tc := tls.Client(conn, c)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			return tc, nil
		}
		return &tapConn{Conn: tc}, nil
	}
}

// restoreConnection puts back into h, the header of an answer net/http
// read, the Connection field it deleted on reading "close" in it, from
// heads, the bytes of the exchange's answers as received: the n-th 1xx
// answer's (from 0), or the final answer's when n is -1, after any 1xx
// answers before it.
func restoreConnection(h http.Header, heads []byte, n int) {
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(heads)))
	for {
		line, err := tp.ReadLine() // the status line
		if err != nil {
			return
		}
		got, err := tp.ReadMIMEHeader()
		if err != nil {
			return
		}
		// The status as net/http reads it: after the first space and
		// any more.
		_, status, _ := strings.Cut(line, " ")
		status, _, _ = strings.Cut(strings.TrimLeft(status, " "), " ")
		switch informational := len(status) == 3 && status[0] == '1' && status != "101"; {
		case n < 0 && informational:
			continue // the final answer comes after
		case n > 0 && informational:
			n--
			continue
		case n >= 0 && !informational:
			return // fewer 1xx answers than n
		}
		if len(got["Connection"]) > 0 {
			h["Connection"] = got["Connection"]
		}
		return
	}
}
