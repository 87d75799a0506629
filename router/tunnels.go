package router

import (
	"context"
	"io"
	"sync"
	"time"
)

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
