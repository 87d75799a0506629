package router

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errResourceBusy refuses a dual write that waited its turn behind earlier
// writes to its resource for longer than turnWait: nothing was sent to any
// backend.
var errResourceBusy = errors.New("earlier writes to this resource are still with the primary, so this one was not sent to any backend; retry later")

// resourceTurns gives the writes to one resource their turn with the
// primary one at a time, in the order they arrived.
//
// Why: the secondary gets a resource's writes in the order their outcomes
// were recorded, and only one write at a time per resource makes that the
// order the primary applied them in. Two PUTs of one resource with the
// primary at once may be applied in one order and answered, or recorded,
// in the other (a stalled goroutine, a busy store is enough): the
// secondary would then end with the older body, and the two sides would
// differ for good with every write acknowledged. This is per process;
// among replicas sharing a store, a write also takes its resource's turn
// in the store (takeTurn).
type resourceTurns struct {
	mu sync.Mutex
	// last is, per resource, the turn that ends last: a new write waits
	// for it. It is closed when that write's outcome is recorded, or its
	// exchange ends without one.
	last map[string]chan struct{}
}

func newResourceTurns() *resourceTurns {
	return &resourceTurns{last: make(map[string]chan struct{})}
}

// take waits until the writes to resource that took a turn before this
// one have ended, for at most limit and while ctx lasts, and returns the
// function that ends this turn (call it once). On error the write must
// not be sent: errResourceBusy past limit, ctx's error when it ended.
func (r *resourceTurns) take(ctx context.Context, resource string, limit time.Duration) (func(), error) {
	own := make(chan struct{})
	r.mu.Lock()
	prev := r.last[resource]
	r.last[resource] = own
	r.mu.Unlock()
	end := r.ender(resource, own)
	if prev == nil {
		return end, nil
	}
	timer := time.NewTimer(limit)
	defer timer.Stop()
	var err error
	select {
	case <-prev:
		return end, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
		err = errResourceBusy
	}
	// The writes queued behind this one wait for it: its turn ends when
	// the one before it ends, so none of them overtakes that one.
	go func() {
		<-prev
		end()
	}()
	return nil, err
}

// tryTake takes resource's turn when no write to it has one, and returns
// the function that ends it (call it once); nil when one has.
func (r *resourceTurns) tryTake(resource string) func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last[resource] != nil {
		return nil
	}
	own := make(chan struct{})
	r.last[resource] = own
	return r.ender(resource, own)
}

// ender is the function that ends the turn own of resource.
func (r *resourceTurns) ender(resource string, own chan struct{}) func() {
	return func() {
		r.mu.Lock()
		if r.last[resource] == own {
			delete(r.last, resource)
		}
		r.mu.Unlock()
		close(own)
	}
}

// Pauses between two tries at a resource's turn in the store while
// another replica's write holds it: from turnPollMin, doubling up to
// turnPollMax, so that a short wait ends soon and a long one costs the
// store a statement a tenth of a second.
const turnPollMin, turnPollMax = 5 * time.Millisecond, 100 * time.Millisecond

// takeTurn gives the journaled write id to resource its turn with the
// primary, waiting for it at most limit and while ctx lasts: first among
// this process's writes (resourceTurns, in arrival order), then among the
// writes of every replica sharing the store (Journal.TakeTurn, which
// another replica's write may hold, or a write of this process that the
// primary left unanswered, which keeps it until recovery records it:
// polled). held, unless nil, ends the local turn the write holds
// already (tryTake): it waits for the store's alone. It returns the
// function that ends the local turn; the store's turn ends when the
// write's outcome is recorded, or it is otherwise settled. On error the
// write must not be sent (the local turn is ended): errResourceBusy past
// limit, ctx's error when it ended, else the store's.
//
// Why no two writes can wait for each other: a write takes the store's
// turn only holding the local one (here, or in its journal entry, which
// asks for it only once tryTake gave the local one), and holds the store's no longer than
// the local one unless its write is left sent (an outcome the store did
// not take yet, or an unanswered write recovery resends), which waits for
// no other write. So a write waiting for the store's turn waits for a
// write of another replica, or for one of its own past, none of which
// waits for it; and a write waiting for the local turn holds nothing in
// the store.
func (t *Table) takeTurn(ctx context.Context, id, resource string, limit time.Duration, held func()) (func(), error) {
	deadline := time.Now().Add(limit)
	end := held
	if end == nil {
		var err error
		if end, err = t.turns.take(ctx, resource, limit); err != nil {
			return nil, err
		}
	}
	pause := turnPollMin
	for {
		taken, err := t.journal.TakeTurn(ctx, id, resource)
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
		case err == nil && taken:
			return end, nil
		case err == nil && !time.Now().Before(deadline):
			err = errResourceBusy
		case err == nil:
			// The last try is at the deadline.
			err = sleep(ctx, min(pause, time.Until(deadline)))
			pause = min(2*pause, turnPollMax)
		}
		if err != nil {
			end()
			return nil, err
		}
	}
}

// sleep waits for d, or until ctx ends: then it is ctx's error.
func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
