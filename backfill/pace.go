package backfill

import (
	"context"
	"sync"
	"time"
)

// pacer holds rows per second across all workers to a rate. It is a small
// virtual clock rather than golang.org/x/time/rate: a batch of n rows may
// go at `next`, which then moves on by n/rate seconds, so the rate holds on
// average and a batch never waits for more than its own share. A nil pacer
// lets everything through.
type pacer struct {
	mu   sync.Mutex
	rate float64
	next time.Time
}

func newPacer(rowsPerSecond int) *pacer {
	if rowsPerSecond <= 0 {
		return nil
	}
	return &pacer{rate: float64(rowsPerSecond)}
}

// take waits until n more rows may be read.
func (p *pacer) take(ctx context.Context, n int) error {
	if p == nil || n == 0 {
		return nil
	}
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	wait := p.next.Sub(now)
	p.next = p.next.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
	p.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
