package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"strangler/domain"
)

// aChange is alice's request to flip route from fallback 25% to modern.
func aChange(route string, now time.Time) Change {
	return Change{
		Route: route, Kind: ChangeFlip, Mode: "modern", FromMode: "fallback", FromPercent: pct(25), BaseVersion: 3,
		Requester: "alice", Reason: "ticket 42", Needed: 1, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour),
	}
}

func TestChangeRequests(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)
		requested := domain.AuditEntry{Actor: "alice", Action: "change_request", Route: "get-patient", Detail: "change request {id}"}

		c, err := s.CreateChange(ctx, aChange("get-patient", clk.Now()), requested)
		if err != nil {
			t.Fatal(err)
		}
		t.Run("a request reads back pending at version 1, its id in the audit entry", func(t *testing.T) {
			got, err := s.Change(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := aChange("get-patient", clk.Now())
			want.ID, want.State, want.Version, want.Approvers = c.ID, ChangePending, 1, []string{}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
			log, _ := s.AuditLog(ctx, AuditFilter{})
			if len(log) != 1 || log[0].Detail != "change request 1" {
				t.Errorf("audit %+v, want one entry naming change request 1", log)
			}
			if _, err := s.Change(ctx, 99); !errors.Is(err, ErrNotFound) {
				t.Errorf("no such request: got %v, want ErrNotFound", err)
			}
		})

		t.Run("a ramp's request keeps its plan", func(t *testing.T) {
			r := aChange("list-photos", clk.Now())
			r.Kind, r.Mode, r.RampSteps, r.RampEvery = ChangeRamp, "fallback", []float64{1, 5, 50}, time.Hour
			r, err := s.CreateChange(ctx, r, requested)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := s.Change(ctx, r.ID)
			if got.Kind != ChangeRamp || !reflect.DeepEqual(got.RampSteps, []float64{1, 5, 50}) || got.RampEvery != time.Hour {
				t.Errorf("got %+v, want the ramp's plan", got)
			}
		})

		t.Run("a second pending request for a route is a conflict and writes nothing", func(t *testing.T) {
			before := auditCount(t, s)
			if _, err := s.CreateChange(ctx, aChange("get-patient", clk.Now()), requested); !errors.Is(err, ErrConflict) {
				t.Errorf("got %v, want ErrConflict", err)
			}
			if n := auditCount(t, s); n != before {
				t.Errorf("got %d audit entries, want %d", n, before)
			}
		})

		t.Run("an approval from a stale version is a conflict; a current one is kept", func(t *testing.T) {
			next := c
			next.Approvers = []string{"bob"}
			if _, err := s.UpdateChange(ctx, next, c.Version+1, clk.Now, domain.AuditEntry{Actor: "bob", Action: "change_approve"}); !errors.Is(err, ErrConflict) {
				t.Errorf("got %v, want ErrConflict", err)
			}
			if c, err = s.UpdateChange(ctx, next, c.Version, clk.Now, domain.AuditEntry{Actor: "bob", Action: "change_approve"}); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.Change(ctx, c.ID); !reflect.DeepEqual(got.Approvers, []string{"bob"}) || got.Version != 2 {
				t.Errorf("got %+v, want bob's approval at version 2", got)
			}
		})

		t.Run("a request is applied together with the flip it asks for, or not at all", func(t *testing.T) {
			applied := c
			applied.State, applied.DecidedBy, applied.DecidedAt = ChangeApplied, "bob", clk.Now()
			o := domain.Override{Route: "get-patient", Mode: "modern", Actor: "alice", Reason: "ticket 42"}
			if _, err := s.SetOverride(ctx, o, 3, flip("get-patient", "fallback", "modern"), LinkChange(applied, c.Version, clk.Now, domain.AuditEntry{})); !errors.Is(err, ErrConflict) {
				t.Fatalf("a flip from a stale route version: got %v, want ErrConflict", err)
			}
			if got, _ := s.Change(ctx, c.ID); got.State != ChangePending {
				t.Errorf("the request of a flip that failed is %s, want pending", got.State)
			}
			if _, err := s.SetOverride(ctx, o, 0, flip("get-patient", "fallback", "modern"), LinkChange(applied, c.Version, clk.Now, domain.AuditEntry{})); err != nil {
				t.Fatal(err)
			}
			got, _ := s.Change(ctx, c.ID)
			if got.State != ChangeApplied || got.DecidedBy != "bob" || !got.DecidedAt.Equal(clk.Now()) {
				t.Errorf("got %+v, want applied by bob", got)
			}
			if _, err := s.CreateChange(ctx, aChange("get-patient", clk.Now()), requested); err != nil {
				t.Errorf("a new request once the last is decided: %v", err)
			}
		})

		t.Run("expired requests are marked and audited once", func(t *testing.T) {
			clk.Advance(24*time.Hour - time.Second)
			fresh, err := s.CreateChange(ctx, aChange("get-visit", clk.Now()), requested)
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Second)
			expiry := func(c Change) domain.AuditEntry {
				return domain.AuditEntry{Actor: c.Requester, Action: "change_expired", Route: c.Route}
			}
			before := auditCount(t, s)
			got, err := s.ExpireChanges(ctx, clk.Now(), expiry)
			if err != nil {
				t.Fatal(err)
			}
			var routes []string
			for _, c := range got {
				routes = append(routes, c.Route)
			}
			// get-patient's first request was applied; list-photos' and
			// get-patient's second were made 24 h ago, get-visit's a
			// second ago.
			if want := []string{"list-photos", "get-patient"}; !reflect.DeepEqual(routes, want) {
				t.Errorf("expired %v, want %v", routes, want)
			}
			if n := auditCount(t, s); n != before+2 {
				t.Errorf("got %d new audit entries, want 2", n-before)
			}
			if again, _ := s.ExpireChanges(ctx, clk.Now(), expiry); len(again) != 0 {
				t.Errorf("a second sweep expired %d more", len(again))
			}
			if got, _ := s.Change(ctx, fresh.ID); got.State != ChangePending {
				t.Errorf("a request a second young is %s, want pending", got.State)
			}
			pending, err := s.Changes(ctx, ChangeFilter{State: ChangePending})
			if err != nil || len(pending) != 1 || pending[0].ID != fresh.ID {
				t.Errorf("pending requests: got %+v (%v), want only get-visit's", pending, err)
			}
			all, _ := s.Changes(ctx, ChangeFilter{Route: "get-patient"})
			if len(all) != 2 || all[0].State != ChangeExpired || all[1].State != ChangeApplied {
				t.Errorf("get-patient's requests, newest first: got %+v, want expired then applied", all)
			}
		})
	})
}

// TestADecisionReachingTheStoreAfterTheExpiryIsRefused: an approval
// decided a moment before the request's expiry (StateAt said pending) is
// written only after it, as a slow gates check can make it. Neither the
// approval nor the flip it applies is written, nor their audit entries:
// the request is expired, as every reader says from then on. The expiry
// itself is still written.
func TestADecisionReachingTheStoreAfterTheExpiryIsRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)
		c, err := s.CreateChange(ctx, aChange("get-patient", clk.Now()), domain.AuditEntry{Actor: "alice", Action: "change_request"})
		if err != nil {
			t.Fatal(err)
		}
		// Decided a millisecond before the expiry, written at it.
		clk.Advance(24*time.Hour - time.Millisecond)
		if c.StateAt(clk.Now()) != ChangePending {
			t.Fatal("the request is not pending when the approval is decided")
		}
		applied := c
		applied.Approvers, applied.State, applied.DecidedBy, applied.DecidedAt = []string{"bob"}, ChangeApplied, "bob", clk.Now()
		late := func() time.Time { return clk.Advance(time.Millisecond) }
		before := auditCount(t, s)
		o := domain.Override{Route: "get-patient", Mode: "modern", Actor: "alice", Reason: "ticket 42"}
		approval := domain.AuditEntry{Actor: "bob", Action: "change_approve", Route: "get-patient"}
		if _, err := s.SetOverride(ctx, o, 0, flip("get-patient", "fallback", "modern"), LinkChange(applied, c.Version, late, approval)); !errors.Is(err, ErrConflict) {
			t.Errorf("applying it at its expiry: got %v, want ErrConflict", err)
		}
		if ov, _ := s.Overrides(ctx); len(ov) != 0 {
			t.Errorf("the route has overrides %+v, want none: the expired request applied nothing", ov)
		}
		if _, err := s.UpdateChange(ctx, applied, c.Version, clk.Now, approval); !errors.Is(err, ErrConflict) {
			t.Errorf("approving it after its expiry: got %v, want ErrConflict", err)
		}
		if n := auditCount(t, s); n != before {
			t.Errorf("got %d new audit entries, want none", n-before)
		}
		got, err := s.ExpireChanges(ctx, clk.Now(), func(c Change) domain.AuditEntry {
			return domain.AuditEntry{Actor: c.Requester, Action: "change_expired", Route: c.Route}
		})
		if err != nil || len(got) != 1 || got[0].ID != c.ID {
			t.Errorf("expiring it: got %+v (%v), want it expired", got, err)
		}
	})
}
