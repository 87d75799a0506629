package backfill

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// silentConn is a connection to the target whose every read and write
// fails once it has waited bound (batch_timeout), as the source's do
// through its driver's readTimeout and writeTimeout. A target gone
// silent (its packets dropped, not refused) would otherwise hold any
// statement for as long as TCP keeps the connection, some fifteen
// minutes: one bound here covers every statement of every command
// (planning, verify, a re-run's comparison, the search for extra rows,
// the ledger, the run's lock) where boundTarget covers the ones a run
// wraps. A statement that legitimately computes past the bound before
// its first row is cut too: batch_timeout is the longest any may wait.
//
// The deadlines pgx sets (to interrupt a statement whose context ended)
// are kept: a read or write waits for the earlier of pgx's deadline and
// its own bound.
type silentConn struct {
	net.Conn
	bound time.Duration

	// mu orders pgx's deadlines with a read's or write's own, so that a
	// deadline pgx sets to interrupt a read already waiting is never
	// replaced by that read's later one.
	mu            sync.Mutex
	read, written time.Time // deadlines pgx set; zero for none
}

// SetDeadline records pgx's deadline for both directions.
func (c *silentConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read, c.written = t, t
	return c.Conn.SetDeadline(t)
}

// SetReadDeadline records pgx's deadline for reads.
func (c *silentConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.read = t
	return c.Conn.SetReadDeadline(t)
}

// SetWriteDeadline records pgx's deadline for writes.
func (c *silentConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written = t
	return c.Conn.SetWriteDeadline(t)
}

func (c *silentConn) Read(b []byte) (int, error) {
	c.mu.Lock()
	own, err := c.within(c.read, c.Conn.SetReadDeadline)
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	return n, c.silence(own, &c.read, err)
}

func (c *silentConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	own, err := c.within(c.written, c.Conn.SetWriteDeadline)
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(b)
	return n, c.silence(own, &c.written, err)
}

// within sets the earlier of pgx's deadline and the bound from now, and
// returns whether the bound is the one set. The caller holds mu.
func (c *silentConn) within(theirs time.Time, set func(time.Time) error) (own bool, err error) {
	d := time.Now().Add(c.bound)
	if !theirs.IsZero() && theirs.Before(d) {
		return false, set(theirs)
	}
	return true, set(d)
}

// silence is err, said as the target's silence when the bound set ran
// out (a timeout, so a lost connection a run resumes from) rather than
// a deadline pgx set meanwhile, theirs, to interrupt the wait.
func (c *silentConn) silence(own bool, theirs *time.Time, err error) error {
	ne, ok := err.(net.Error)
	if !own || !ok || !ne.Timeout() {
		return err
	}
	c.mu.Lock()
	interrupted := !theirs.IsZero() && !theirs.After(time.Now())
	c.mu.Unlock()
	if interrupted {
		return err
	}
	return &silentError{side: "target", bound: c.bound, err: err}
}

// silentError is a read or write to the target, or a transaction or
// statement boundTarget bounds, or a call to the state store a run
// through the API makes (boundedLedger), past batch_timeout.
type silentError struct {
	side  string // "target" or "state store"
	bound time.Duration
	err   error
}

func (e *silentError) Error() string {
	return fmt.Sprintf("%v: the %s did not answer within batch_timeout (%s)", e.err, e.side, e.bound)
}
func (e *silentError) Unwrap() error   { return e.err }
func (e *silentError) Timeout() bool   { return true }
func (e *silentError) Temporary() bool { return false }
