package stats

import (
	"context"
	"log/slog"
	"time"
)

// FlushInterval is how often the facade flushes its counts (and what
// else it batches) to the state store for the report and the gates:
// often enough that they are current, rarely enough to cost nothing.
const FlushInterval = 10 * time.Second

// flushTimeout bounds one flush's calls to the state store.
const flushTimeout = 5 * time.Second

// Flusher is something kept in memory and added to the state store in
// batches, such as the counts or the learned response schemas.
type Flusher struct {
	// What names it in the warning when a flush fails: "counts".
	What string
	// Flush adds what was gathered since the last flush; what it could
	// not add it keeps for the next.
	Flush func(context.Context) error
}

// Flusher is the counts as a Flusher to sink, attributed to the hour of
// each flush.
func (c *Counters) Flusher(sink Sink) Flusher {
	return Flusher{What: "counts", Flush: func(ctx context.Context) error { return c.Flush(ctx, sink, time.Now()) }}
}

// RunFlushes flushes each of fs every interval, and once more when ctx
// ends so that a replica shutting down leaves nothing behind. A failed
// flush is logged; its data waits for the next.
func RunFlushes(ctx context.Context, interval time.Duration, log *slog.Logger, fs ...Flusher) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	flush := func() {
		// The last flush runs after ctx ended: it gets a context of its own.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), flushTimeout)
		defer cancel()
		for _, f := range fs {
			if err := f.Flush(fctx); err != nil {
				log.Warn("flushing "+f.What+" to the state store failed; they are kept for the next flush", "error", err)
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			flush()
			return nil
		case <-tick.C:
			flush()
		}
	}
}
