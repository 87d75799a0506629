package backfill

import (
	"context"
	"errors"
	"fmt"
	"os"

	"strangler/store"
)

// holding runs work while it holds tables in the state store for the
// run, renewing the hold as a worker renews its lease (holdLease): a
// second plain run of them (another process on the same plan) is
// refused, naming this run and this process, rather than racing it over
// their rows, checkpoint and baseline. A renewal that finds the tables
// another run's (this process paused past the lease, and a run took
// them) ends work with that error.
func (r *apiRunner) holding(ctx context.Context, tables []string, work func(context.Context) error) error {
	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s (pid %d)", host, os.Getpid())
	l := r.opts.APILedger
	if err := l.HoldAPIBackfill(ctx, r.run, holder, tables, DefaultLease); err != nil {
		return err
	}
	defer func() {
		if err := l.ReleaseAPIBackfill(context.WithoutCancel(ctx), r.run); err != nil {
			r.opts.Log.Warn("backfill could not let go of its tables; another run may start once the hold runs out", "run_id", r.run, "error", err)
		}
	}()
	renew := func(ctx context.Context) (lost, err error) {
		err = l.HoldAPIBackfill(ctx, r.run, holder, tables, DefaultLease)
		if errors.Is(err, store.ErrAPIBackfillHeld) {
			return err, nil
		}
		return nil, err
	}
	return holdLease(ctx, DefaultLease, renew, work)
}
