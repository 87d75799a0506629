// Package testkit is what the facade's tests share, so that each job is
// done one way: a recording backend (a real HTTP server on loopback), a
// reader of Prometheus metrics, a settable clock, a log sink that tests
// can read, and one helper to wait for a condition. It is imported by
// tests only.
package testkit

import (
	"testing"
	"time"
)

// Eventually polls cond until it holds and returns how long that took;
// after timeout it fails the test naming what was awaited. Budgets should
// be generous: the machines that run the suite are shared and loaded, and
// a generous budget costs nothing when the condition comes true early.
// It must be called from the test's goroutine.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	wait := time.Millisecond
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("%s: not after %v", what, timeout)
		}
		time.Sleep(wait)
		wait = min(2*wait, 50*time.Millisecond)
	}
	return time.Since(start)
}
