package shadow

import (
	"sync"
	"sync/atomic"
	"time"
)

// Pool runs shadow work off the request path with a hard bound: a task
// that finds every slot taken is refused at once, never queued, so a slow
// or dead backend costs dropped comparisons, not memory or latency. It is
// safe for concurrent use.
//
// A task runs on a worker goroutine that, once done, waits a while for the
// next task rather than ending: a new goroutine starts with a small stack
// and grows it (copying it) on every shadow call, which cost as much CPU as
// the comparison itself. Workers idle for workerIdle end (within twice
// that), so a pool left behind by a reload holds nothing for long.
type Pool struct {
	max     int64
	running atomic.Int64
	closed  atomic.Bool

	// work hands a task to a waiting worker; unbuffered, so a task is
	// only ever taken by a worker that is free.
	work chan Task
	// quit ends the waiting workers when the pool closes.
	quit chan struct{}

	// mu and idle let Wait sleep until the last task ends.
	mu   sync.Mutex
	idle *sync.Cond
}

// workerIdle is how long a worker waits for its next task before it ends:
// its timer fires every workerIdle, and a worker that ran no task since
// the last time ends, so it ends after between one and two of them idle.
// Resetting the timer after every task cost each shadow copy a change of
// the runtime's timer heap.
const workerIdle = 2 * time.Second

// Task is work a Pool runs. A shadow job hands itself over as one, which
// costs no allocation: the method value of its run cost one per copy.
type Task interface{ Run() }

// funcTask is a function as a Task.
type funcTask func()

func (f funcTask) Run() { f() }

// NewPool returns a pool running at most maxInflight tasks at once (at
// least one).
func NewPool(maxInflight int) *Pool {
	p := &Pool{max: int64(max(maxInflight, 1)), work: make(chan Task), quit: make(chan struct{})}
	p.idle = sync.NewCond(&p.mu)
	return p
}

// TryGo runs f on a worker goroutine if fewer than the bound are running
// and the pool is not closed, and reports whether it did; on false the
// caller counts a dropped comparison.
func (p *Pool) TryGo(f func()) bool {
	if !p.Reserve() {
		return false
	}
	p.Go(f)
	return true
}

// Reserve takes a slot for a task that is not ready to run yet, if fewer
// than the bound are running and the pool is not closed, and reports
// whether it did. A slot taken must be given to Go or back with Release.
// A task that waits for something before it can run (a shadow copy, for
// its primary's answer) waits so without a goroutine: handing it to a
// worker that then waited cost a second wake-up for every task.
func (p *Pool) Reserve() bool {
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
	return true
}

// Go runs f on a worker goroutine in a slot Reserve took; the slot is free
// again once f returns.
func (p *Pool) Go(f func()) { p.GoTask(funcTask(f)) }

// GoTask is Go for a Task.
func (p *Pool) GoTask(t Task) {
	select {
	case p.work <- t:
	default:
		go p.worker(t)
	}
}

// Release gives back a slot Reserve took, for a task that will not run.
func (p *Pool) Release() { p.done() }

// worker runs t, then the tasks handed to it, until none came between
// two ticks of its idle timer (see workerIdle) or the pool closed.
func (p *Pool) worker(t Task) {
	timer := time.NewTimer(workerIdle)
	defer timer.Stop()
	for {
		t.Run()
		p.done()
		if !p.next(timer, &t) {
			return
		}
	}
}

// next waits for the worker's next task, into t, and reports whether one
// came before the worker was idle a whole tick of timer.
func (p *Pool) next(timer *time.Timer, t *Task) bool {
	for ran := true; ; ran = false {
		select {
		case *t = <-p.work:
			return true
		case <-timer.C:
			if !ran {
				return false
			}
			timer.Reset(workerIdle)
		case <-p.quit:
			return false
		}
	}
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

// Close refuses new tasks, waits for the running ones to finish and ends
// the waiting workers.
func (p *Pool) Close() {
	if p.closed.Swap(true) {
		p.Wait()
		return
	}
	close(p.quit)
	p.Wait()
}
