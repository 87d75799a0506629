package backfill_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"strangler/backfill"
)

// TestTheRunsLockOutlivesTheTargetsIdleSessionTimeout: the advisory
// lock that keeps a second backfill off the ledger is held by a session
// of its own, idle the whole run. A target whose DBA set
// idle_session_timeout (PostgreSQL 14 on; 1.5 s here, minutes on a real
// server, hours of run) ended that session, and the lock with it,
// without a word: a second plain backfill started beside the first.
// The lock's session now keeps itself from the timeout, and the other
// sessions, pinged by the pool once idle, are unaffected.
func TestTheRunsLockOutlivesTheTargetsIdleSessionTimeout(t *testing.T) {
	t.Parallel()
	w := fiveTables(t)
	u := *w.cfg.Target.URL
	q := u.Query()
	q.Set("idle_session_timeout", "1500")
	u.RawQuery = q.Encode()
	*w.cfg.Target.URL = u
	done := w.startRun(backfill.Options{Log: discard()})
	// 600 patients take 3 s at this rate: the lock's session has idled
	// past the timeout.
	waitFor(t, func() bool { return w.count(t, "SELECT count(*) FROM patients") >= 600 })
	if _, err := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: discard()}); err == nil || !strings.Contains(err.Error(), "another backfill is running") {
		t.Errorf("a plain backfill while the run copies: %v, want it refused", err)
	}
	if res := stopped(t, done, 2*time.Minute, "its copy"); res.err != nil {
		t.Errorf("the run: %v", res.err)
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify after the run: %+v", d.Tables)
	}
}
