package router

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// errWritesHeld refuses a dual write that waited longer than its
// primary's timeout for a change of where routes send writes to be checked
// against the journal and made (HoldWrites): nothing was sent to any
// backend, nor journaled.
var errWritesHeld = errors.New("a change of the routes is being checked against the write journal, which did not finish within the primary's timeout, so this write was not sent to any backend; retry later")

// errStaleFlags refuses a dual write the journal refused as decided
// under route flags another replica had changed, when reading them again
// did not serve it (decideAgain): nothing was sent to any backend, nor
// journaled.
var errStaleFlags = errors.New("another replica changed this route moments ago and this one could not follow it yet, so this write was not sent to any backend; retry")

// decideAgain serves a write the journal refused as decided under route
// flags older than the state store's (domain.ErrStaleFlags: another
// replica changed its route, and this one has not followed yet). Nothing
// of it was journaled or sent. Once the flags are read again
// (Deps.Resync), the table serving then routes it anew, as a write that
// began under an earlier table (reroute). One refused so before, or
// whose flags could not be read again, answers 503 with Retry-After
// (errStaleFlags) and reaches no backend.
func (t *Table) decideAgain(x *exchange, req *http.Request) {
	if resync := t.owner.deps.Resync; resync != nil && !x.decidedAgain {
		resync(req.Context())
		if cur := t.owner.table.Load(); cur != t {
			x.decidedAgain = true
			cur.reroute(x, req)
			return
		}
	}
	t.writeError(&x.w, req, x, errStaleFlags)
}

// writeHold lets dual writes journal under the table serving (enter,
// leave) and a change of where routes send writes hold them back (hold):
// the hold waits for the writes journaling, and new ones wait for its
// release. A write waits at most a bound: with a state store that
// answers in seconds the hold lasts as long as the store takes to answer
// the change's check and commit, and a client held past its route's
// timeout would take the write for lost (and retry it, or give up).
type writeHold struct {
	// mu is held for reading by each write journaling, for writing by a
	// hold.
	mu sync.RWMutex
	// holding serialises holds, so that released names the one in place.
	holding sync.Mutex
	// released is set before a hold takes mu and closed once it let mu
	// go: what a write that found mu taken waits on. A write finds mu
	// taken only once a hold has set it, so it is never nil then; it may
	// be a hold's that has just let go, closed, and the write looks again.
	released atomic.Pointer[chan struct{}]
}

// enter lets a write journal until it calls leave; while a hold is in
// place, or waiting for the writes journaling, it waits for the hold's
// release, for at most limit and while ctx lasts: errWritesHeld past
// limit, ctx's error when it ended first.
func (h *writeHold) enter(ctx context.Context, limit time.Duration) error {
	if h.mu.TryRLock() {
		return nil
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for !h.mu.TryRLock() {
		select {
		case <-*h.released.Load():
		case <-timer.C:
			return errWritesHeld
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// leave ends what enter began.
func (h *writeHold) leave() { h.mu.RUnlock() }

// hold waits for the writes journaling to leave and keeps new ones from
// entering until release is called.
func (h *writeHold) hold() (release func()) {
	h.holding.Lock()
	released := make(chan struct{})
	h.released.Store(&released)
	h.mu.Lock()
	return func() {
		h.mu.Unlock()
		close(released)
		h.holding.Unlock()
	}
}
