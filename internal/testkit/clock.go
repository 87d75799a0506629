package testkit

import (
	"sync"
	"time"
)

// Clock is a clock a test sets by hand; pass its Now wherever code takes
// a func() time.Time. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// T0 is where clocks start unless told otherwise: a round time, far from
// the real one, so a mix-up of the two shows.
var T0 = time.Date(2030, 3, 4, 10, 15, 0, 0, time.UTC)

// NewClock returns a clock reading at.
func NewClock(at time.Time) *Clock { return &Clock{t: at} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to at.
func (c *Clock) Set(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = at
}

// Advance moves the clock on by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}
