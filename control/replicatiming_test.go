package control

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/config"
	"strangler/domain"
	"strangler/internal/testdb"
	"strangler/store"
)

// lagging puts replica b (of a, on one PostgreSQL store) one step behind:
// it has read the route at override version 1, then a clears the route
// and sets it again, to a state b has not heard of (planes follow the
// store only when told: b's notification is late, as when its
// connection to the store was cut). Before, the clear took the version
// back to 0, so the new state was at version 1 once more, the one b
// holds for the state before. before and after are a's flips before b
// reads the route and after the clear.
func lagging(t *testing.T, a, b *plane, route string, before, after func()) {
	t.Helper()
	ctx := context.Background()
	before()
	b.flags.resync(ctx)
	if rf, _ := b.flags.Get(route); rf.Version != 1 {
		t.Fatalf("b reads %s at version %d, want 1", route, rf.Version)
	}
	if _, err := a.flags.Apply(ctx, Flip{Route: route, Actor: "alice", Reason: "start over", Clear: true, Force: true, approved: true}); err != nil {
		t.Fatalf("clearing %s: %v", route, err)
	}
	after()
	if rf, _ := a.flags.Get(route); rf.Version != 3 {
		t.Fatalf("a reads %s at version %d after the clear (2) and the flip, want 3", route, rf.Version)
	}
}

// TestAGuardBehindTheStoreRollsBackOnlyWhatTheRouteIs: alice sets a route
// to modern, then clears it and starts over at modern 10% (the same
// override version before store migration 0190). Modern fails on replica b, which has not heard of
// the clear yet: its guard trips on the route as it read it, modern for
// all of the traffic, whose step back is fallback for all of it, which
// moves the route at 10% forward. Before, the store took it (its version
// matched, and the store did not check the from then): the route went
// to fallback 100%, audited from modern 100%. Now the store refuses it
// as stale; once b follows, its guard steps the
// route back from what it is, to fallback 10%.
func TestAGuardBehindTheStoreRollsBackOnlyWhatTheRouteIs(t *testing.T) {
	a, b, c := twoReplicas(t)
	ctx := context.Background()
	guard := NewGuard(b.flags, b.counters, b.store, b.reg, b.log, c.Now)
	lagging(t, a, b, "get-patient",
		func() { a.flip(t, "get-patient", domain.ModeModern, nil) },
		func() { a.flip(t, "get-patient", domain.ModeModern, pct(10)) })

	b.modernFails("get-patient", 25)
	guard.Check(ctx)
	a.flags.resync(ctx)
	if got, want := a.served("get-patient"), "modern 10%"; got != want {
		t.Fatalf("after the guard of a replica behind the store looked: the route is %s, want %s (untouched: it judged a route that is no more)", got, want)
	}
	if got := a.rollbacks(t, "get-patient"); len(got) != 0 {
		t.Fatalf("the audit log holds %d rollbacks, the first from %s %v: want none", len(got), got[0].FromMode, got[0].FromPercent)
	}

	// b follows; modern still fails, and its guard judges the route as it
	// is now.
	b.flags.resync(ctx)
	guard.Check(ctx) // the window starts at the change b saw
	c.Advance(2 * time.Second)
	b.modernFails("get-patient", 25)
	guard.Check(ctx)
	a.flags.resync(ctx)
	if got, want := a.served("get-patient"), "fallback 10%"; got != want {
		t.Errorf("after b followed: the route is %s, want %s (one step back from modern 10%%)", got, want)
	}
	rb := a.rollbacks(t, "get-patient")
	if len(rb) != 1 || rb[0].FromMode != domain.ModeModern || domain.FullPercent(rb[0].FromPercent) != 10 {
		t.Errorf("the audit log holds rollbacks %+v, want one, from modern 10%%", rb)
	}
	verifyChain(t, a.store)
}

// TestAnApprovalOnAReplicaBehindTheStoreAppliesNothing: bob asks to move
// a route from legacy (override version 1) to fallback 10%; alice clears
// the route and sets it to shadow (version 1 again, before store
// migration 0190). temp approves on
// replica b, which has not heard of it: the request's route is where b
// last read it, so b applied it, audited from legacy, to a route nobody
// asked to move from shadow. Now the store refuses the flip, b reads the
// route again and voids the request.
func TestAnApprovalOnAReplicaBehindTheStoreAppliesNothing(t *testing.T) {
	a, b := approvalReplicas(t)
	ctx := context.Background()
	var id int64
	lagging(t, a, b, "get-patient",
		func() {
			a.flip(t, "get-patient", domain.ModeLegacy, nil)
			id = a.requestFlip(t, "get-patient", bobToken, `{"mode": "fallback", "percent": 10, "reason": "backfill done"}`)
		},
		func() { a.flip(t, "get-patient", domain.ModeShadow, nil) })

	resp, body := b.decide(t, id, "approve", tempToken, "")
	if msg, _ := body["error"].(string); resp.StatusCode != http.StatusConflict ||
		!strings.Contains(msg, "nothing was applied: get-patient changed since the request was made: it is shadow, set by alice") {
		t.Errorf("approving on a replica behind the store: got %d %v, want 409 saying the route changed", resp.StatusCode, body)
	}
	a.flags.resync(ctx)
	if got, want := a.served("get-patient"), "shadow"; got != want {
		t.Errorf("the route is %s, want %s", got, want)
	}
	if ch, err := a.store.Change(ctx, id); err != nil || ch.State != store.ChangeStale {
		t.Errorf("the request is %s (%v), want stale", ch.State, err)
	}
	verifyChain(t, a.store)
}

// TestThreeGuardsTrippingAtOnceStepTheRouteBackOnce: modern fails on
// three replicas, whose guards all look in the same instant, and again
// every second after. The route steps back once (modern to fallback,
// never on to legacy), with one audit entry, and stays held.
func TestThreeGuardsTrippingAtOnceStepTheRouteBackOnce(t *testing.T) {
	dsn := testdb.Postgres(t)
	c := &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	ctx := context.Background()
	var planes []*plane
	var guards []*Guard
	for range 3 {
		p := newPlaneWith(t, planeOptions{dsn: dsn, clock: c})
		planes = append(planes, p)
		guards = append(guards, NewGuard(p.flags, p.counters, p.store, p.reg, p.log, c.Now))
	}
	planes[0].flip(t, "get-patient", domain.ModeModern, nil)
	for second := range 5 {
		var looks []func()
		for i, p := range planes {
			p.flags.resync(ctx)
			p.modernFails("get-patient", 25)
			looks = append(looks, func() { guards[i].Check(ctx) })
		}
		together(looks...)
		if got := planes[0].rollbacks(t, "get-patient"); len(got) != 1 {
			t.Fatalf("second %d: the audit log holds %d rollbacks, want 1", second, len(got))
		}
		c.Advance(time.Second)
	}
	planes[0].flags.resync(ctx)
	if got, want := planes[0].served("get-patient"), "fallback"; got != want {
		t.Errorf("the route is %s, want %s (one step back from modern)", got, want)
	}
	if rf, _ := planes[0].flags.Get("get-patient"); rf.Hold() == nil {
		t.Error("the route is not held")
	}
	var counted float64
	for _, p := range planes {
		counted += testutilCounter(t, p, "strangler_guard_rollbacks_total")
	}
	if counted != 1 {
		t.Errorf("the replicas counted %v rollbacks in strangler_guard_rollbacks_total, want 1", counted)
	}
}

// TestAFlipOnAReplicaBehindTheStoreIsToldTheRouteAsItIs: bob flips the
// route on replica b, at the version b read, before alice's clear and
// flip on a (which left the route at that version again, in another
// state, before store migration 0190).
// The store refuses it (412); b reads the store then, so the answer
// says the route as it is, and bob's flip at that version goes through.
// Before, the store took the flip as made from the state b had read.
func TestAFlipOnAReplicaBehindTheStoreIsToldTheRouteAsItIs(t *testing.T) {
	a, b, _ := twoReplicas(t)
	lagging(t, a, b, "get-patient",
		func() { a.flip(t, "get-patient", domain.ModeModern, nil) },
		func() { a.flip(t, "get-patient", domain.ModeModern, pct(10)) })

	resp, body := b.patch(t, "get-patient", bobToken, `{"mode": "modern", "percent": 50, "reason": "half"}`)
	cur, _ := body["current"].(map[string]any)
	if resp.StatusCode != http.StatusPreconditionFailed || cur == nil || cur["mode"] != "modern" || cur["percent"] != 10.0 {
		t.Fatalf("a flip on a replica behind the store: got %d %v, want 412 with the route as it is, modern 10%%", resp.StatusCode, body)
	}
	resp, body = b.call(t, "PATCH", "/admin/routes/get-patient", bobToken, `{"mode": "modern", "percent": 50, "reason": "half"}`, "If-Match", resp.Header.Get("ETag"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the flip again at the ETag of the 412: got %d %v, want 200", resp.StatusCode, body)
	}
	entries, err := a.store.AuditLog(context.Background(), store.AuditFilter{Route: "get-patient", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if e := entries[0]; e.Actor != "bob" || domain.FullPercent(e.FromPercent) != 10 || domain.FullPercent(e.ToPercent) != 50 {
		t.Errorf("bob's flip is audited from %s %v to %s %v, want from modern 10%% to modern 50%%", e.FromMode, e.FromPercent, e.ToMode, e.ToPercent)
	}
}

// TestARampWhoseRouteTheLeadersReloadRemovedSaysItWaits: a reload on the
// replica driving the ramps (a) removes the ramped route, which the
// other replica (b) still serves, as during a rolling change of the
// file. The ramp cannot step there. Before, it stayed running with its
// step overdue and nothing said why (strangler_ramp_waiting_seconds and
// its alert stayed silent); now it waits, saying why, on every replica.
func TestARampWhoseRouteTheLeadersReloadRemovedSaysItWaits(t *testing.T) {
	a, b, c := twoReplicas(t)
	ctx := context.Background()
	a.atZero(t)
	a.rollouts.Check(ctx) // a leads
	a.startRamp(t, "get-patient", `{"steps": [10, 20], "every": "30m"}`)
	a.rollouts.Check(ctx)
	if got, want := a.served("get-patient"), "fallback 10%"; got != want {
		t.Fatalf("after the ramp's first step: %s, want %s", got, want)
	}
	a.reload(t, func(routes []config.Route) []config.Route {
		return slices.DeleteFunc(routes, func(r config.Route) bool { return r.Name == "get-patient" })
	})
	c.Advance(30 * time.Minute)
	a.rollouts.Check(ctx)
	b.flags.resync(ctx)
	ramp := b.ramp(t, "get-patient")
	if waiting, _ := ramp["waiting"].(string); ramp["state"] != "running" || !strings.Contains(waiting, "has no route get-patient") {
		t.Errorf("the ramp on the replica that has the route: %v, want it running and waiting, saying the leader has no such route", ramp)
	}
}

// TestAFlipThatChangesNothingOnAReplicaBehindTheStoreIsToldTheRouteAsItIs:
// alice moves a route on replica a; b has not heard of it (its
// notification is late, or the store is out of its reach). Bob asks b
// for what b still serves: a clear of a route b holds no override of,
// then the mode b last read. Before, b answered each from memory, 200
// "unchanged" (the route already was so, nothing to clear) while every
// replica that had read the store served alice's mode, and went on to
// serve it itself. Now b asks the store first: 412 with the route as it
// is; and a b that cannot reach the store says so (503).
func TestAFlipThatChangesNothingOnAReplicaBehindTheStoreIsToldTheRouteAsItIs(t *testing.T) {
	a, b, _ := twoReplicas(t)
	for _, tc := range []struct {
		name, body string
		alice      domain.Mode
	}{
		{"a clear of a route without an override here", `{"clear": true, "reason": "back to the file"}`, domain.ModeModern},
		{"a flip to the mode the route has here", `{"mode": "modern", "reason": "all of it"}`, domain.ModeShadow},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.flags.resync(context.Background())
			a.flip(t, "create-patient", tc.alice, nil)
			resp, body := b.patch(t, "create-patient", bobToken, tc.body)
			cur, _ := body["current"].(map[string]any)
			if resp.StatusCode != http.StatusPreconditionFailed || cur == nil || cur["mode"] != string(tc.alice) {
				t.Errorf("got %d %v, want 412 with the route as it is, %s", resp.StatusCode, body, tc.alice)
			}
			if got, want := b.served("create-patient"), string(tc.alice); got != want {
				t.Errorf("b serves %s, want %s", got, want)
			}
		})
	}
	t.Run("a replica that cannot reach the store", func(t *testing.T) {
		b.flags.resync(context.Background())
		b.store.Close()
		resp, body := b.patch(t, "create-patient", bobToken, `{"mode": "shadow", "reason": "again"}`)
		if resp.StatusCode != http.StatusServiceUnavailable || body["unchanged"] != nil {
			t.Errorf("got %d %v, want 503", resp.StatusCode, body)
		}
	})
}

// TestARampStartedOnAReplicaBehindTheStoreIsToldTheRouteAsItIs: alice
// sets a route to modern 50% on replica a; b has not heard of it and
// still serves the file's legacy. Bob starts a fallback ramp on b from
// there. Before, b took it (200, audited as a ramp from legacy, which
// the route no longer was) and the ramp was paused at its first look as
// "moved by hand". Now b asks the store first: 412 with the route as it
// is, and no ramp.
func TestARampStartedOnAReplicaBehindTheStoreIsToldTheRouteAsItIs(t *testing.T) {
	a, b, _ := twoReplicas(t)
	a.flip(t, "create-patient", domain.ModeModern, pct(50))
	resp, body := b.patch(t, "create-patient", bobToken, `{"ramp": {"steps": [10, 20], "every": "30m", "mode": "fallback"}, "reason": "ticket 7"}`)
	cur, _ := body["current"].(map[string]any)
	if resp.StatusCode != http.StatusPreconditionFailed || cur == nil || cur["mode"] != "modern" || cur["percent"] != 50.0 {
		t.Errorf("got %d %v, want 412 with the route as it is, modern 50%%", resp.StatusCode, body)
	}
	if ramp := b.ramp(t, "create-patient"); ramp != nil {
		t.Errorf("the route has a ramp: %v", ramp)
	}
}

// TestARampStartedOnAReplicaBehindAFlipAndItsClearIsRefused: alice sets
// a route to modern 50% on replica a and clears it again; b has heard of
// neither and shows the route as it is again, the file's legacy, but at
// the ETag it had before both. Bob starts a ramp on b at that ETag: 412
// with the route as it is at its ETag now, and no ramp. The mode and
// share alone would have let it through: a change at an ETag that names
// a state before changes the operator never saw.
func TestARampStartedOnAReplicaBehindAFlipAndItsClearIsRefused(t *testing.T) {
	a, b, _ := twoReplicas(t)
	before := b.version(t, "create-patient")
	a.flip(t, "create-patient", domain.ModeModern, pct(50))
	if _, err := a.flags.Apply(context.Background(), Flip{Route: "create-patient", Actor: "alice", Reason: "test", Clear: true}); err != nil {
		t.Fatal(err)
	}
	resp, body := b.patch(t, "create-patient", bobToken, `{"ramp": {"steps": [10, 20], "every": "30m", "mode": "fallback"}, "reason": "ticket 7"}`)
	cur, _ := body["current"].(map[string]any)
	if resp.StatusCode != http.StatusPreconditionFailed || cur == nil || cur["mode"] != "legacy" || resp.Header.Get("ETag") == before {
		t.Errorf("got %d %v, ETag %s; want 412 with the route as it is, legacy at an ETag past %s", resp.StatusCode, body, resp.Header.Get("ETag"), before)
	}
	if ramp := b.ramp(t, "create-patient"); ramp != nil {
		t.Errorf("the route has a ramp: %v", ramp)
	}
}

// TestARampResumedOnAReplicaBehindTheStoreGoesOnFromWhereTheRouteIs:
// bob's ramp to fallback 10%, 20%, 30% is paused after its first step;
// alice moves the route by hand to 30% and back to 10% on replica a,
// and b has heard only of the first. Bob resumes the ramp on b. Before,
// b ended it as done, "past every step" at the 30% it remembered, and
// the route stayed at 10%; now b reads the store first: 412 with the
// route as it is, and the ramp stays paused.
func TestARampResumedOnAReplicaBehindTheStoreGoesOnFromWhereTheRouteIs(t *testing.T) {
	a, b, _ := twoReplicas(t)
	ctx := context.Background()
	a.startRamp(t, "create-patient", `{"steps": [10, 20, 30], "every": "30m", "mode": "fallback"}`)
	a.rollouts.Check(ctx)
	if resp, body := a.patch(t, "create-patient", bobToken, `{"ramp": {"action": "pause"}, "reason": "lunch"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("pausing the ramp: %d %v", resp.StatusCode, body)
	}
	a.flip(t, "create-patient", domain.ModeFallback, pct(30))
	b.flags.resync(ctx)
	a.flip(t, "create-patient", domain.ModeFallback, pct(10))
	resp, body := b.patch(t, "create-patient", bobToken, `{"ramp": {"action": "resume"}, "reason": "back"}`)
	cur, _ := body["current"].(map[string]any)
	if resp.StatusCode != http.StatusPreconditionFailed || cur == nil || cur["percent"] != 10.0 {
		t.Errorf("got %d %v, want 412 with the route as it is, fallback 10%%", resp.StatusCode, body)
	}
	if ramp := b.ramp(t, "create-patient"); ramp["state"] != "paused" {
		t.Errorf("the ramp: %v, want it paused", ramp)
	}
}
