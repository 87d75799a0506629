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
// differ for good with every write acknowledged. This is per process: the
// writes to one resource that reach two replicas at the same instant are
// ordered by their recorded answers (README, Dual-write).
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
	end := func() {
		r.mu.Lock()
		if r.last[resource] == own {
			delete(r.last, resource)
		}
		r.mu.Unlock()
		close(own)
	}
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
