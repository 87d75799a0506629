package shadow

import (
	"sync"
	"sync/atomic"
)

// Pool runs shadow work off the request path with a hard bound: a task
// that finds every slot taken is refused at once, never queued, so a slow
// or dead backend costs dropped comparisons, not memory or latency. It is
// safe for concurrent use.
type Pool struct {
	max     int64
	running atomic.Int64
	closed  atomic.Bool

	// mu and idle let Wait sleep until the last task ends.
	mu   sync.Mutex
	idle *sync.Cond
}

// NewPool returns a pool running at most maxInflight tasks at once (at
// least one).
func NewPool(maxInflight int) *Pool {
	p := &Pool{max: int64(max(maxInflight, 1))}
	p.idle = sync.NewCond(&p.mu)
	return p
}

// TryGo runs f on a new goroutine if fewer than the bound are running and
// the pool is not closed, and reports whether it did; on false the caller
// counts a dropped comparison.
func (p *Pool) TryGo(f func()) bool {
	for {
		n := p.running.Load()
		if n >= p.max {
			return false
		}
		if p.running.CompareAndSwap(n, n+1) {
			break
		}
	}
	// Checked after taking the slot, so Close cannot miss this task: either
	// Close sees it running and waits, or it sees closed and backs out.
	if p.closed.Load() {
		p.done()
		return false
	}
	go func() {
		defer p.done()
		f()
	}()
	return true
}

func (p *Pool) done() {
	if p.running.Add(-1) == 0 {
		p.mu.Lock()
		p.idle.Broadcast()
		p.mu.Unlock()
	}
}

// Running is the number of tasks running now.
func (p *Pool) Running() int { return int(p.running.Load()) }

// Wait blocks until no task is running.
func (p *Pool) Wait() {
	p.mu.Lock()
	for p.running.Load() > 0 {
		p.idle.Wait()
	}
	p.mu.Unlock()
}

// Close refuses new tasks and waits for the running ones to finish.
func (p *Pool) Close() {
	p.closed.Store(true)
	p.Wait()
}
