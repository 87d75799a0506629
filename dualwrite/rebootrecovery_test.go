package dualwrite

import (
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testkit"
)

// TestRecoveryWaitsForAPrimaryThatRebootedWithTheFacade: the host
// reboots, facade and primary together. The primary refuses connections
// for recovery's first two resends of the PUT it had, then answers; the
// write is settled from that answer and reaches the secondary, nobody
// asked. Meanwhile the write keeps its path's turn: a later write to the
// path waits, and goes once the first is settled. Before, the first
// refused resend made the write unknown for an operator.
func TestRecoveryWaitsForAPrimaryThatRebootedWithTheFacade(t *testing.T) {
	for name, dsn := range map[string]func(*testing.T) string{"sqlite": sqlite, "postgres": postgres} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r := newRig(t, dsn(t), testSettings)
			r.routes.dualWrite["put-item"] = routeSettings{idempotent: true}
			r.routes.setBackend(t, "legacy", testkit.DeadURL(t), time.Second)
			r.abandon(put("w1", "7", `{"v":1}`))
			late := put("w2", "7", `{"v":2}`)
			for resend := 1; resend <= 2; resend++ {
				r.w.recover(ctx)
				if resend == 1 {
					if turn, err := r.store.BeginWriteTurn(ctx, r.asJournaled(late), time.Hour); err != nil || turn {
						t.Fatalf("BeginWriteTurn of a later write to the path = %v, %v; want journaled without the turn", turn, err)
					}
				}
				if rep := r.repair("w1"); rep.State != domain.StateSent || rep.Attempts != resend {
					t.Fatalf("after %d refused resends: %s with %d attempts, want sent, waiting for the primary", resend, rep.State, rep.Attempts)
				}
				if taken, err := r.store.TakeTurn(ctx, late.ID, late.Resource, time.Minute); err != nil || taken {
					t.Fatalf("TakeTurn of the later write while the first waits for the primary = %v, %v; want no turn", taken, err)
				}
				r.advance(time.Duration(testSettings.MaxBackoff) * 2)
			}
			r.routes.setBackend(t, "legacy", r.legacy.URL, 2*time.Second) // the primary is back
			r.w.recover(ctx)
			if rep := r.repair("w1"); rep.State != domain.StatePending || rep.Outcome.Status != http.StatusOK || rep.Attempts != 0 {
				t.Fatalf("once the primary answered: %s %d with %d attempts, want pending with its 200 and every delivery attempt to come", rep.State, rep.Outcome.Status, rep.Attempts)
			}
			r.deliverDue(r.w)
			if got := r.modern.Last(t); string(got.Body) != `{"v":1}` {
				t.Errorf("the secondary got %q, want the recovered write", got.Body)
			}
			if taken, err := r.store.TakeTurn(ctx, late.ID, late.Resource, time.Minute); err != nil || !taken {
				t.Errorf("TakeTurn of the later write once the first is settled = %v, %v; want its turn", taken, err)
			}
			if n := r.count("put-item", "unknown"); n != 0 {
				t.Errorf("unknown counted %v times, want 0: nobody needs asking", n)
			}
		})
	}
}

// TestRecoveryGivesUpOnAPrimaryThatNeverAnswers: a primary answering 503
// for good gets repairs.max_attempts resends, spaced by the repairs
// backoff and by its Retry-After (up to repairs.max_backoff); the write
// then becomes unknown with its attempts counted, and a later write to
// its path, which waited throughout, goes after it.
func TestRecoveryGivesUpOnAPrimaryThatNeverAnswers(t *testing.T) {
	for name, dsn := range map[string]func(*testing.T) string{"sqlite": sqlite, "postgres": postgres} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			r := newRig(t, dsn(t), testSettings)
			r.routes.dualWrite["put-item"] = routeSettings{idempotent: true}
			var mu sync.Mutex
			var keys []string
			r.legacy.SetHandler(func(w http.ResponseWriter, req *http.Request) {
				io.Copy(io.Discard, req.Body)
				mu.Lock()
				keys = append(keys, req.Header.Get("Idempotency-Key"))
				mu.Unlock()
				w.Header().Set("Retry-After", "3600")
				w.WriteHeader(http.StatusServiceUnavailable)
			})
			r.abandon(put("w1", "7", `{"v":1}`))
			late := put("w2", "7", `{"v":2}`)
			r.w.recover(ctx)
			if turn, err := r.store.BeginWriteTurn(ctx, r.asJournaled(late), time.Hour); err != nil || turn {
				t.Fatalf("BeginWriteTurn of a later write to the path = %v, %v; want journaled without the turn", turn, err)
			}
			// An hour asked for, a minute (max_backoff) at most waited.
			maxBackoff := time.Duration(testSettings.MaxBackoff)
			if wait := time.Until(r.repair("w1").LeaseUntil); wait < maxBackoff/2 || wait > 2*maxBackoff {
				t.Errorf("resent again in %v, want the primary's Retry-After cut to max_backoff (%v)", wait, maxBackoff)
			}
			r.w.recover(ctx) // too early: not resent
			for resends := 1; resends < testSettings.MaxAttempts; resends++ {
				if taken, err := r.store.TakeTurn(ctx, late.ID, late.Resource, time.Minute); err != nil || taken {
					t.Fatalf("TakeTurn of the later write after %d resends = %v, %v; want no turn", resends, taken, err)
				}
				r.advance(2 * maxBackoff)
				r.w.recover(ctx)
			}
			rep := r.repair("w1")
			if rep.State != domain.StateUnknown || rep.Attempts != testSettings.MaxAttempts {
				t.Errorf("after the primary's 503s: %s with %d attempts, want unknown with %d", rep.State, rep.Attempts, testSettings.MaxAttempts)
			}
			mu.Lock()
			if len(keys) != testSettings.MaxAttempts || keys[0] != "w1" || keys[len(keys)-1] != "w1" {
				t.Errorf("the primary got keys %v, want %d resends keyed w1", keys, testSettings.MaxAttempts)
			}
			mu.Unlock()
			if taken, err := r.store.TakeTurn(ctx, late.ID, late.Resource, time.Minute); err != nil || !taken {
				t.Errorf("TakeTurn of the later write once the first is unknown = %v, %v; want its turn", taken, err)
			}
			if n := r.count("put-item", "unknown"); n != 1 {
				t.Errorf("unknown counted %v times, want 1", n)
			}
		})
	}
}
