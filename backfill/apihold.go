package backfill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"strangler/store"
)

// hold holds tables in the state store for the run, and renews the hold
// every third of DefaultLease until release: a second plain run of them
// (another process on the same plan) is refused, naming this run and
// this process, rather than racing it over their rows, checkpoint and
// baseline. A renewal that finds the tables another run's (this process
// paused past the lease, and a run took them) ends the run's context.
// A renewal that fails is tried again at the next tick, while the hold
// may still last.
func (r *apiRunner) hold(ctx context.Context, tables []string) (context.Context, func(), error) {
	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s (pid %d)", host, os.Getpid())
	l := r.opts.APILedger
	if err := l.HoldAPIBackfill(ctx, r.run, holder, tables, DefaultLease); err != nil {
		return ctx, nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(DefaultLease / 3)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if err := l.HoldAPIBackfill(ctx, r.run, holder, tables, DefaultLease); errors.Is(err, store.ErrAPIBackfillHeld) {
				cancel(err)
				return
			}
		}
	}()
	return ctx, func() {
		cancel(nil)
		<-done
		if err := l.ReleaseAPIBackfill(context.WithoutCancel(ctx), r.run); err != nil {
			r.opts.Log.Warn("backfill could not let go of its tables; another run may start once the hold runs out", "run_id", r.run, "error", err)
		}
	}, nil
}
