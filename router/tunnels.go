package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"strangler/upstream"
)

// switchProtocols completes a 101 answer: the client's connection is taken
// from net/http, gets the answer's head, and is then joined to the
// backend's until either side ends or the request is cancelled.
func (t *Table) switchProtocols(w http.ResponseWriter, out *http.Request, res *http.Response) {
	asked, got := upgradeType(out.Header), upgradeType(res.Header)
	switch {
	case !printable(got):
		t.proxyError(w, out, errors.New("backend tried to switch to an invalid protocol"))
		return
	case !strings.EqualFold(asked, got):
		t.proxyError(w, out, errors.New("backend tried to switch to another protocol than the one asked for"))
		return
	}
	// As an upgrade is asked for: the fields the backend's Connection
	// names are hop-by-hop (RFC 9110 section 7.6.1), the switch aside.
	// They reached the client: "Connection: Upgrade, X-Name" brought it
	// X-Name, which the facade drops from every other answer (found by
	// the red team).
	upstream.RemoveHopByHop(res.Header)
	res.Header["Connection"] = []string{"Upgrade"}
	res.Header["Upgrade"] = []string{got}
	backend, ok := res.Body.(io.ReadWriteCloser)
	if !ok {
		t.proxyError(w, out, errors.New("101 answer with a body that cannot be written to"))
		return
	}
	client, brw, err := http.NewResponseController(w).Hijack()
	if errors.Is(err, http.ErrNotSupported) {
		t.proxyError(w, out, fmt.Errorf("switching protocols: %w", err))
		return
	}
	// Cancelling the request closes the backend's connection (golang/go#35559).
	stop := context.AfterFunc(out.Context(), func() { backend.Close() })
	defer func() {
		if stop() {
			backend.Close()
		}
	}()
	if err != nil {
		t.proxyError(w, out, fmt.Errorf("switching protocols: %w", err))
		return
	}
	defer client.Close()
	// The drain gives a tunnel the grace and then closes it: net/http
	// forgets a hijacked connection.
	ends := &tunnelEnds{client: client, backend: backend}
	if !t.owner.tunnels.add(ends) {
		return // the drain closed the tunnels already: the deferred closes end this one
	}
	defer t.owner.tunnels.remove(ends)
	h := w.Header()
	addHeader(h, res.Header)
	res.Header, res.Body = h, nil // res.Write writes the head alone
	if err := res.Write(brw); err != nil {
		t.proxyError(w, out, fmt.Errorf("switching protocols: %w", err))
		return
	}
	if err := brw.Flush(); err != nil {
		t.proxyError(w, out, fmt.Errorf("switching protocols: %w", err))
		return
	}
	// The head went past the status writer: without this, every
	// WebSocket was counted as a client that left before its answer
	// (499), and one modern served as no answer of modern's (found by
	// the red team).
	x := exchangeFrom(out.Context())
	x.w.status = http.StatusSwitchingProtocols
	// Its duration is the handshake's: the tunnel's life, minutes or
	// hours, made every latency quantile of the route's backend its.
	x.switched = time.Since(x.start)
	// What the client sent right behind its request is in brw's reader,
	// not on the connection: it was lost (found by the red team).
	var fromClient io.Reader = client
	if n := brw.Reader.Buffered(); n > 0 {
		fromClient = io.MultiReader(io.LimitReader(brw.Reader, int64(n)), client)
	}
	errc := make(chan error, 2)
	go t.tunnel(client, backend, errc)
	go t.tunnel(backend, fromClient, errc)
	// Until one side fails, or both ended.
	if err := <-errc; err == nil {
		<-errc
	}
}

// tunnel copies from src to dst until src ends, then closes dst for
// writing so that its reader sees the end too, and reports on errc: nil
// when dst was closed cleanly, else the error.
//
// A tunnel waits with a small buffer of its own (tunnelWait) and takes a
// pooled one only while bytes come faster than that fills: io.Copy held
// 32 KiB each way for as long as the tunnel lasted, which made an idle
// WebSocket cost the facade about 85 KiB of heap (found by the red team).
func (t *Table) tunnel(dst io.Writer, src io.Reader, errc chan<- error) {
	small := make([]byte, tunnelWait)
	buf, pooled := small, []byte(nil)
	defer func() {
		if pooled != nil {
			t.buffers.Put(pooled)
		}
	}()
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if w, werr := dst.Write(buf[:n]); werr != nil || w < n {
				errc <- cmp.Or(werr, io.ErrShortWrite)
				return
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			errc <- rerr
			return
		}
		switch {
		case n == len(buf) && pooled == nil:
			pooled = t.buffers.Get()
			buf = pooled
		case n < len(buf) && pooled != nil:
			// The bytes waiting were all read: the next read may wait long.
			t.buffers.Put(pooled)
			buf, pooled = small, nil
		}
	}
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		errc <- cw.CloseWrite()
		return
	}
	errc <- errTunnelDone
}

// tunnelWait is the buffer each direction of a tunnel waits for bytes
// with: a WebSocket's small messages go through it whole.
const tunnelWait = 2 << 10

// errTunnelDone ends a tunnel whose side cannot be half-closed.
var errTunnelDone = errors.New("tunnel copy done")

// tunnels are the connections handed over to a backend after a 101 (a
// WebSocket): net/http forgets a connection once it is hijacked, so
// http.Server.Shutdown neither waits for them nor closes them, and their
// handlers went on past the shutdown grace, holding the drain in its
// wait for dual writes still at a primary (until the bound, with a
// warning that writes became unknown) and ending only with the process
// (found by the red team). The router keeps them so the drain can give
// them the grace requests get and close the rest (Router.CloseTunnels).
type tunnels struct {
	mu   sync.Mutex
	open map[*tunnelEnds]struct{}
	// closed: the drain closed the tunnels; one opened later is closed
	// at once.
	closed bool
	// empty is closed when the last open tunnel ends; nil while none is
	// open.
	empty chan struct{}
}

// tunnelEnds are the two connections of one tunnel.
type tunnelEnds struct{ client, backend io.Closer }

// add keeps e until remove, and reports false, having kept nothing, once
// the tunnels are closed.
func (ts *tunnels) add(e *tunnelEnds) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return false
	}
	if ts.open == nil {
		ts.open = make(map[*tunnelEnds]struct{})
	}
	if len(ts.open) == 0 {
		ts.empty = make(chan struct{})
	}
	ts.open[e] = struct{}{}
	return true
}

func (ts *tunnels) remove(e *tunnelEnds) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if _, ok := ts.open[e]; !ok {
		return
	}
	delete(ts.open, e)
	if len(ts.open) == 0 {
		close(ts.empty)
		ts.empty = nil
	}
}

// CloseTunnels waits until the upgraded connections (WebSockets) end or
// ctx ends, then closes those left, both ends, and every one opened
// later, and returns how many it closed. The drain calls it once the
// public listener shut down, with the shutdown grace's context: a tunnel
// gets the grace a request in flight gets, and then ends with the
// listener rather than with the process.
func (r *Router) CloseTunnels(ctx context.Context) int {
	ts := &r.tunnels
	ts.mu.Lock()
	empty := ts.empty
	ts.mu.Unlock()
	if empty != nil {
		select {
		case <-empty:
		case <-ctx.Done():
		}
	}
	ts.mu.Lock()
	ts.closed = true
	left := make([]*tunnelEnds, 0, len(ts.open))
	for e := range ts.open {
		left = append(left, e)
	}
	empty = ts.empty
	ts.mu.Unlock()
	for _, e := range left {
		e.client.Close()
		e.backend.Close()
	}
	if empty != nil {
		// Their handlers return as soon as their copies fail, so that
		// the drain does not take them for requests still at a backend.
		select {
		case <-empty:
		case <-time.After(time.Second):
		}
	}
	return len(left)
}
