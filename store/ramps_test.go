package store

import (
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"strangler/domain"
)

// aRamp is a ramp of get-patient through fallback at 1, 5, 25 and 100%,
// started at now.
func aRamp(now time.Time) Ramp {
	return Ramp{
		Route: "get-patient", Mode: "fallback", Steps: []float64{1, 5, 25, 100}, Every: 30 * time.Minute,
		State: RampRunning, NextAt: now, AtMode: "shadow", AtVersion: 0,
		Actor: "alice", Reason: "ticket 42", CreatedAt: now, UpdatedAt: now,
	}
}

func TestRamps(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)
		start := domain.AuditEntry{Actor: "alice", Action: "ramp_start", Route: "get-patient", Reason: "ticket 42"}

		r, err := s.StartRamp(ctx, aRamp(clk.Now()), start)
		if err != nil {
			t.Fatal(err)
		}
		t.Run("a started ramp reads back whole, at version 1, audited", func(t *testing.T) {
			all, err := s.Ramps(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := aRamp(clk.Now())
			want.Version = 1
			if got := all["get-patient"]; r.Version != 1 || !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v (version %d), want %+v", got, r.Version, want)
			}
			if n := auditCount(t, s); n != 1 {
				t.Errorf("got %d audit entries, want 1", n)
			}
		})

		t.Run("a second ramp of a route whose ramp is under way is a conflict and writes nothing", func(t *testing.T) {
			for _, state := range RampStates {
				if !state.Active() {
					continue // replaced: a later subtest
				}
				r.State = state
				if r, err = s.UpdateRamp(ctx, r, r.Version, domain.AuditEntry{}); err != nil {
					t.Fatal(err)
				}
				if _, err := s.StartRamp(ctx, aRamp(clk.Now()), start); !errors.Is(err, ErrConflict) {
					t.Errorf("over a %s ramp: got %v, want ErrConflict", state, err)
				}
			}
			if n := auditCount(t, s); n != 1 {
				t.Errorf("got %d audit entries, want the first ramp's only", n)
			}
		})

		t.Run("an update from a stale version is a conflict and writes nothing", func(t *testing.T) {
			before := auditCount(t, s)
			next := r
			next.State, next.Note = RampCancelled, "bob cancelled it"
			_, err := s.UpdateRamp(ctx, next, r.Version-1, domain.AuditEntry{Actor: "bob", Action: "ramp_cancel", Route: "get-patient"})
			if !errors.Is(err, ErrConflict) {
				t.Errorf("got %v, want ErrConflict", err)
			}
			if all, _ := s.Ramps(ctx); all["get-patient"].State != RampHeld || auditCount(t, s) != before {
				t.Errorf("the stale update changed the ramp to %s or wrote an audit entry", all["get-patient"].State)
			}
			if _, err := s.UpdateRamp(ctx, Ramp{Route: "nope"}, 1, domain.AuditEntry{}); !errors.Is(err, ErrNotFound) {
				t.Errorf("a route without a ramp: got %v, want ErrNotFound", err)
			}
		})

		t.Run("a ramp's step and the flip it makes commit together or not at all", func(t *testing.T) {
			step := r
			step.Taken, step.AtMode, step.AtPercent, step.AtVersion = 1, "fallback", pct(1), 1
			o := domain.Override{Route: "get-patient", Mode: "fallback", Percent: pct(1), Actor: "ramp", Reason: "ticket 42"}
			// The ramp changed since it was read: the flip is not made.
			_, err := s.SetOverride(ctx, o, 0, flip("get-patient", "shadow", "fallback"), LinkRamp(step, r.Version+1, domain.AuditEntry{}))
			if !errors.Is(err, ErrConflict) {
				t.Fatalf("got %v, want ErrConflict", err)
			}
			if all, _ := s.Overrides(ctx); len(all) != 0 {
				t.Errorf("a step whose ramp changed flipped the route: %+v", all)
			}
			// The route changed since it was read: the ramp does not move.
			if _, err := s.SetOverride(ctx, o, 3, flip("get-patient", "shadow", "fallback"), LinkRamp(step, r.Version, domain.AuditEntry{})); !errors.Is(err, ErrConflict) {
				t.Fatalf("got %v, want ErrConflict", err)
			}
			if all, _ := s.Ramps(ctx); all["get-patient"].Taken != 0 {
				t.Errorf("a step whose route changed moved the ramp: %+v", all["get-patient"])
			}
			if _, err := s.SetOverride(ctx, o, 0, flip("get-patient", "shadow", "fallback"), LinkRamp(step, r.Version, domain.AuditEntry{})); err != nil {
				t.Fatal(err)
			}
			all, _ := s.Ramps(ctx)
			if got := all["get-patient"]; got.Taken != 1 || got.AtVersion != 1 || *got.AtPercent != 1 || got.Version != r.Version+1 {
				t.Errorf("after the step: got %+v, want step 1 taken at version %d", got, r.Version+1)
			}
			r = all["get-patient"]
		})

		t.Run("a new ramp replaces one that is over, one version on", func(t *testing.T) {
			for _, state := range RampStates {
				if state.Active() {
					continue
				}
				r.State = state
				if r, err = s.UpdateRamp(ctx, r, r.Version, domain.AuditEntry{}); err != nil {
					t.Fatal(err)
				}
				again, err := s.StartRamp(ctx, aRamp(clk.Advance(time.Hour)), start)
				if err != nil {
					t.Fatalf("over a %s ramp: %v", state, err)
				}
				all, _ := s.Ramps(ctx)
				if got := all["get-patient"]; again.Version != r.Version+1 || got.Taken != 0 || got.State != RampRunning || !got.CreatedAt.Equal(clk.Now()) {
					t.Errorf("over a %s ramp: got %+v (version %d), want a new running ramp at version %d", state, got, again.Version, r.Version+1)
				}
				r = all["get-patient"]
			}
		})
	})
}

func TestNamedLeases(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)
		take := func(owner string) bool {
			t.Helper()
			ok, err := s.TakeLease(ctx, "ramps", owner, 15*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			return ok
		}
		if !take("a") {
			t.Fatal("a free lease: not taken")
		}
		if take("b") {
			t.Error("b took the lease a holds")
		}
		clk.Advance(10 * time.Second)
		if !take("a") {
			t.Error("a could not renew its lease")
		}
		clk.Advance(14 * time.Second)
		if take("b") {
			t.Error("b took the lease a renewed, before it lapsed")
		}
		clk.Advance(time.Second)
		if !take("b") {
			t.Error("b could not take the lease a let lapse")
		}
		if take("a") {
			t.Error("a took back the lease b holds now")
		}
		if owner, until, err := s.Lease(ctx, "ramps"); err != nil || owner != "b" || !leasedFor(b, clk, until, 15*time.Second) {
			t.Errorf("Lease: got %q until %v (%v), want b's", owner, until, err)
		}
		if err := s.ReleaseLease(ctx, "ramps", "a"); err != nil || take("a") {
			t.Errorf("a released the lease b holds (%v)", err)
		}
		if err := s.ReleaseLease(ctx, "ramps", "b"); err != nil || !take("a") {
			t.Errorf("after b released it, a could not take the lease (%v)", err)
		}
	})
}

func TestABackupFreesTheNamedLeases(t *testing.T) {
	ctx := context.Background()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "s.db")
	s := openStore(t, dsn, newClock())
	if ok, err := s.TakeLease(ctx, "ramps", "replica-1", time.Hour); err != nil || !ok {
		t.Fatalf("TakeLease: %v %v", ok, err)
	}
	out := filepath.Join(t.TempDir(), "backup.db")
	if err := Backup(ctx, dsn, out); err != nil {
		t.Fatal(err)
	}
	restored := openStore(t, "sqlite:"+out, newClock())
	if owner, _, err := restored.Lease(ctx, "ramps"); err != nil || owner != "" {
		t.Errorf("the backup's lease: held by %q (%v), want free: its holder drives the original", owner, err)
	}
	if owner, _, _ := s.Lease(ctx, "ramps"); owner != "replica-1" {
		t.Errorf("the original's lease: held by %q, want replica-1 still", owner)
	}
}
