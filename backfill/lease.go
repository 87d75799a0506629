package backfill

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// How workers of a shared run take turns on its parts (key ranges of
// database tables, groups of tables sent to the API), whatever ledger
// holds the leases: one decision for both.

// takeTurns works on the parts it can lease (claim gives the work of the
// part it leased, ok false when none is free) until left says none is
// left, its own or another's. While other workers hold the last ones it
// looks again every 200ms (one cheap query), to move on as soon as they
// are done, or take them over should their leases run out.
func takeTurns(ctx context.Context, lease time.Duration,
	claim func(context.Context) (work func(context.Context) error, ok bool, err error),
	left func(context.Context) (bool, error)) error {
	for {
		work, ok, err := claim(ctx)
		if err != nil {
			return err
		}
		if ok {
			if err := work(ctx); err != nil {
				return err
			}
			continue
		}
		more, err := left(ctx)
		if err != nil || !more {
			return err
		}
		select {
		case <-time.After(min(200*time.Millisecond, lease/4)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// lostUnless is a worker's renewal for holdLease: the lease is lost
// (errLeaseLost) when the renewal went through and held nothing.
func lostUnless(held bool, err error) (lost, _ error) {
	if err == nil && !held {
		return errLeaseLost, nil
	}
	return nil, err
}

// leaseLapsing is holdLease's error when no renewal went through for
// three quarters of the lease: the part may be another's by the time the
// next request goes out, so work stops rather than send it. It is
// errLeaseLost to the callers (the part is left to whoever takes it,
// this worker too, once the lease ran out); last is the renewals' last
// error, nil when the one sent is still waiting (a store gone silent).
type leaseLapsing struct {
	lease time.Duration
	last  error
}

func (e *leaseLapsing) Error() string {
	last := "a renewal still waiting for an answer"
	if e.last != nil {
		last = e.last.Error()
	}
	return fmt.Sprintf("the lease (%s) could not be renewed before it ran out (last: %s); stopped before another may take the work over", e.lease, last)
}

func (e *leaseLapsing) Unwrap() error { return errLeaseLost }

// holdLease runs work on a leased part, renewing the lease every third
// of its length. A renewal that finds the part another's (lost not nil)
// ends work's context, and holdLease returns lost; a renewal that fails
// (err) is tried again at the next tick, while the lease may still hold.
// Once three quarters of the lease passed since the last renewal that
// went through was sent (or since work began), work's context ends with
// leaseLapsing: ledgers fence their own writes to a lost lease, but not
// what work sends elsewhere (the modern service's API), which another
// worker would send again once the lease ran out. The quarter left is
// for a request already sent to arrive, and for clocks: a lease runs on
// the ledger's.
func holdLease(ctx context.Context, lease time.Duration, renew func(context.Context) (lost, err error), work func(context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	var mu sync.Mutex
	var last error // the renewals' last error
	lapse := time.AfterFunc(lease*3/4, func() {
		mu.Lock()
		defer mu.Unlock()
		cancel(&leaseLapsing{lease: lease, last: last})
	})
	defer lapse.Stop()
	var wg sync.WaitGroup
	var lost error // written by the renewer, read once it is done
	wg.Go(func() {
		tick := time.NewTicker(lease / 3)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			sent := time.Now()
			l, err := renew(ctx)
			switch {
			case err == nil && l != nil:
				lost = l
				cancel(l)
				return
			case err == nil:
				lapse.Reset(time.Until(sent.Add(lease * 3 / 4)))
			default:
				mu.Lock()
				last = err
				mu.Unlock()
			}
		}
	})
	err := work(ctx)
	cause := context.Cause(ctx)
	cancel(nil)
	wg.Wait()
	var lapsing *leaseLapsing
	switch {
	case lost != nil:
		return lost
	case err != nil && errors.As(cause, &lapsing):
		return lapsing
	case err != nil && cause != nil && !errors.Is(cause, context.Canceled):
		return cause
	}
	return err
}
