package backfill

import (
	"context"
	"errors"
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

// holdLease runs work on a leased part, renewing the lease every third
// of its length. A renewal that finds the part another's (lost not nil)
// ends work's context, and holdLease returns lost; a renewal that fails
// (err) is tried again at the next tick, while the lease may still hold.
func holdLease(ctx context.Context, lease time.Duration, renew func(context.Context) (lost, err error), work func(context.Context) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
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
			if l, err := renew(ctx); err == nil && l != nil {
				lost = l
				cancel(l)
				return
			}
		}
	})
	err := work(ctx)
	cause := context.Cause(ctx)
	cancel(nil)
	wg.Wait()
	switch {
	case lost != nil:
		return lost
	case err != nil && cause != nil && !errors.Is(cause, context.Canceled):
		return cause
	}
	return err
}
