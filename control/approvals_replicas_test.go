package control

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/internal/testdb"
	"strangler/store"
)

// approvalReplicas are two replicas of a control plane whose routes need
// four eyes, on one PostgreSQL schema; each has its own clock, both
// starting at the same time.
func approvalReplicas(t *testing.T) (a, b *plane) {
	t.Helper()
	dsn := testdb.Postgres(t)
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	a = newPlaneWith(t, planeOptions{dsn: dsn, yaml: "approvals: 2\n", clock: &clock{t: start}})
	b = newPlaneWith(t, planeOptions{dsn: dsn, yaml: "approvals: 2\n", clock: &clock{t: start}})
	return a, b
}

// together runs each of fns at once, from a common start, and waits for
// all of them.
func together(fns ...func()) {
	var ready, done sync.WaitGroup
	startGun := make(chan struct{})
	for _, fn := range fns {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-startGun
			fn()
		}()
	}
	ready.Wait()
	close(startGun)
	done.Wait()
}

// set puts the clock at t.
func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// verifyChain fails the test unless the store's audit chain holds.
func verifyChain(t *testing.T, st *store.Store) store.AuditVerification {
	t.Helper()
	v, err := st.VerifyAudit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if v.Break != nil {
		t.Fatalf("the audit chain is broken after %d entries: %+v", v.Entries, *v.Break)
	}
	return v
}

// TestTwoReplicasApprovingOneRequestApplyItOnce: alice approves on one
// replica and temp on the other, at the same moment. One approval
// applies the request; the other is told someone else decided it. The
// audit log holds one approval and one flip per request, and stays one
// chain.
func TestTwoReplicasApprovingOneRequestApplyItOnce(t *testing.T) {
	a, b := approvalReplicas(t)
	ctx := context.Background()
	const rounds = 10
	for round := range rounds {
		b.flags.resync(ctx)
		id := a.requestFlip(t, "create-patient", bobToken, `{"mode": "shadow", "reason": "copy reads"}`)
		var codes [2]int
		var msgs [2]string
		together(
			func() {
				resp, body := a.decide(t, id, "approve", aliceToken, "")
				codes[0], msgs[0] = resp.StatusCode, fmt.Sprint(body["error"])
			},
			func() {
				resp, body := b.decide(t, id, "approve", tempToken, "")
				codes[1], msgs[1] = resp.StatusCode, fmt.Sprint(body["error"])
			},
		)
		ok, conflict := 0, 0
		for i, c := range codes {
			switch c {
			case http.StatusOK:
				ok++
			case http.StatusConflict:
				conflict++
				// The loser is told the request is applied, and by whom.
				if !strings.Contains(msgs[i], fmt.Sprintf("change request %d is applied by ", id)) {
					t.Errorf("round %d: the refused approval says %q, want that the request is applied, and by whom", round, msgs[i])
				}
			}
		}
		if ok != 1 || conflict != 1 {
			t.Fatalf("round %d: the two approvals answered %v, want one 200 and one 409", round, codes)
		}
		c, err := a.store.Change(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if c.State != store.ChangeApplied || len(c.Approvers) != 1 {
			t.Fatalf("round %d: the request is %s approved by %q, want applied by one of them", round, c.State, c.Approvers)
		}
		// Back to legacy: a rollback needs no approval.
		a.flags.resync(ctx)
		if resp, body := a.patch(t, "create-patient", bobToken, `{"mode": "legacy", "reason": "again"}`); resp.StatusCode != http.StatusOK {
			t.Fatalf("round %d: rolling back: %d %v", round, resp.StatusCode, body)
		}
	}
	counts := map[string]int{}
	entries, err := a.store.AuditLog(ctx, store.AuditFilter{Route: "create-patient", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		counts[e.Action]++
	}
	if counts["change_request"] != rounds || counts["change_approve"] != rounds || counts["flip"] != 2*rounds || counts["change_stale"] != 0 {
		t.Errorf("the audit log holds %v, want %d requests, approvals and flips forward (and as many rollbacks), nothing voided", counts, rounds)
	}
	v := verifyChain(t, a.store)
	t.Logf("%d rounds: %v; chain of %d entries holds", rounds, counts, v.Entries)
}

// TestAnApprovalRacingTheRequestsExpiryHasOneOutcome: the replica that
// drives the ramps expires a request (its clock is past the 24 hours)
// while another replica, whose clock is a moment before, approves it.
// Either the approval applied it and it never expired, or it expired and
// nothing was applied; never both, never neither.
func TestAnApprovalRacingTheRequestsExpiryHasOneOutcome(t *testing.T) {
	a, b := approvalReplicas(t)
	ctx := context.Background()
	outcomes := map[string]int{}
	for round := range 10 {
		a.flags.resync(ctx)
		b.flags.resync(ctx)
		id := a.requestFlip(t, "create-patient", bobToken, `{"mode": "shadow", "reason": "copy reads"}`)
		c, err := a.store.Change(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		a.clock.set(c.ExpiresAt)
		b.clock.set(c.ExpiresAt.Add(-time.Millisecond))
		var code int
		var msg string
		together(
			func() { a.rollouts.expireChanges(ctx, a.clock.Now()) },
			func() {
				resp, body := b.decide(t, id, "approve", aliceToken, "")
				code, msg = resp.StatusCode, fmt.Sprint(body["error"])
			},
		)
		c, err = a.store.Change(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		b.flags.resync(ctx)
		served := b.served("create-patient")
		switch {
		case code == http.StatusOK && c.State == store.ChangeApplied && served == "shadow":
			outcomes["applied"]++
			if resp, body := b.patch(t, "create-patient", bobToken, `{"mode": "legacy", "reason": "again"}`); resp.StatusCode != http.StatusOK {
				t.Fatalf("round %d: rolling back: %d %v", round, resp.StatusCode, body)
			}
		case code == http.StatusConflict && c.State == store.ChangeExpired && served == "legacy":
			outcomes["expired"]++
			if !strings.Contains(msg, "expired") {
				t.Errorf("round %d: the refused approval says %q, want that the request expired", round, msg)
			}
		default:
			t.Fatalf("round %d: the approval answered %d, the request is %s and the route %s: want applied and shadow, or expired and legacy",
				round, code, c.State, served)
		}
		// The next round starts a little later on both clocks.
		a.clock.set(c.ExpiresAt.Add(time.Minute))
		b.clock.set(c.ExpiresAt.Add(time.Minute))
	}
	entries, err := a.store.AuditLog(ctx, store.AuditFilter{Route: "create-patient", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	decided := map[string]int{}
	for _, e := range entries {
		if e.Action == "change_expired" || e.Action == "change_approve" {
			id := strings.Fields(strings.TrimPrefix(e.Detail, "change request "))[0]
			decided[id]++
			if decided[id] > 1 {
				t.Errorf("change request %s was approved and expired both", id)
			}
		}
	}
	if outcomes["applied"]+outcomes["expired"] != len(decided) {
		t.Errorf("outcomes %v, but %d requests decided in the audit log", outcomes, len(decided))
	}
	verifyChain(t, a.store)
	t.Logf("outcomes: %v", outcomes)
}

// TestARampStepRacingAFlipOnAnotherReplicaHasOneOutcome: the replica that
// drives the ramps takes a step while an operator flips the route on the
// other, both from the same version. Either the step is taken and the
// flip refused (412), or the flip is taken and the ramp pauses naming
// the operator; never both moves, never a step over the operator's flip.
func TestARampStepRacingAFlipOnAnotherReplicaHasOneOutcome(t *testing.T) {
	a, b, c := twoReplicas(t)
	ctx := context.Background()
	outcomes := map[string]int{}
	for round := range 10 {
		a.atZero(t)
		a.rollouts.Check(ctx) // a leads: the race is the step's alone
		a.startRamp(t, "get-patient", `{"steps": [10, 20], "every": "30m"}`)
		b.flags.resync(ctx)
		version := b.version(t, "get-patient")
		var code int
		together(
			func() { a.rollouts.Check(ctx) },
			func() {
				resp, _ := b.call(t, "PATCH", "/admin/routes/get-patient", bobToken, `{"mode": "legacy", "reason": "by hand"}`, "If-Match", version)
				code = resp.StatusCode
			},
		)
		a.flags.resync(ctx)
		a.rollouts.Check(ctx) // sees a flip that won, and pauses the ramp
		ramp := a.ramp(t, "get-patient")
		switch served := a.served("get-patient"); {
		case code == http.StatusPreconditionFailed && served == "fallback 10%" && ramp["state"] == "running":
			outcomes["step"]++
		case code == http.StatusOK && served == "legacy" && ramp["state"] == "paused" && strings.Contains(ramp["note"].(string), "bob moved get-patient by hand"):
			outcomes["flip"]++
		default:
			t.Fatalf("round %d: the flip answered %d, the route is %s, the ramp %v: want one of the two moves", round, code, served, ramp)
		}
		if resp, body := a.patch(t, "get-patient", bobToken, `{"ramp": {"action": "cancel"}, "reason": "next round"}`); resp.StatusCode != http.StatusOK {
			t.Fatalf("round %d: cancelling: %d %v", round, resp.StatusCode, body)
		}
		c.Advance(time.Hour)
	}
	entries, err := a.store.AuditLog(ctx, store.AuditFilter{Route: "get-patient", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, e := range entries {
		counts[e.Actor+" "+e.Action]++
	}
	if counts["ramp flip"] != outcomes["step"] || counts["ramp ramp_pause"] != outcomes["flip"] || counts["bob flip"] != outcomes["flip"] {
		t.Errorf("the audit log holds %v for outcomes %v: want a ramp step per step, a flip by bob and a pause per flip", counts, outcomes)
	}
	verifyChain(t, a.store)
	t.Logf("outcomes: %v", outcomes)
}
