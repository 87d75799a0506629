package control

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/config"
	"strangler/domain"
	"strangler/store"
)

// newApprovalsPlane is a plane whose routes need two token names to move
// forward: four eyes.
func newApprovalsPlane(t *testing.T) *plane {
	t.Helper()
	return newPlaneWith(t, planeOptions{yaml: "approvals: 2\n"})
}

// pendingChange stores a change request by requester to move
// create-patient from legacy to shadow, as the plane's clock has it.
func (p *plane) pendingChange(t *testing.T, requester string) store.Change {
	t.Helper()
	now := p.clock.Now()
	c, err := p.store.CreateChange(context.Background(), store.Change{
		Route: "create-patient", Kind: store.ChangeFlip, Mode: "shadow", FromMode: "legacy",
		Requester: requester, Reason: "start shadowing", Needed: 1, CreatedAt: now, ExpiresAt: now.Add(changeTTL),
	}, domain.AuditEntry{At: now, Actor: requester, Action: "change_request", Route: "create-patient"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// requestFlip has token flip route, which needs approvals: it must answer
// 202 with a change request, whose id it returns.
func (p *plane) requestFlip(t *testing.T, route, token, body string) int64 {
	t.Helper()
	resp, out := p.patch(t, route, token, body)
	cr, _ := out["change_request"].(map[string]any)
	if resp.StatusCode != http.StatusAccepted || cr == nil || cr["state"] != "pending" {
		t.Fatalf("a flip forward on a route with approvals: got %d %v, want 202 with a pending change request", resp.StatusCode, out)
	}
	return int64(cr["id"].(float64))
}

// decide approves or rejects change request id as token.
func (p *plane) decide(t *testing.T, id int64, how, token, reason string) (*http.Response, map[string]any) {
	t.Helper()
	return p.call(t, "POST", fmt.Sprintf("/admin/changes/%d/%s", id, how), token, `{"reason": "`+reason+`"}`)
}

func TestAFlipForwardWaitsForAnotherTokenNamesApproval(t *testing.T) {
	p := newApprovalsPlane(t)
	id := p.requestFlip(t, "get-patient", bobToken, `{"mode": "modern", "reason": "backfill done"}`)
	if got, want := p.served("get-patient"), "fallback"; got != want {
		t.Fatalf("with the request pending: got %s, want %s", got, want)
	}
	_, route := p.call(t, "GET", "/admin/routes/get-patient", veraToken, "")
	if pc, _ := route["pending_change"].(map[string]any); pc == nil || pc["summary"] != "fallback → modern" || pc["requested_by"] != "bob" {
		t.Errorf("the route shows pending_change %v, want bob's fallback → modern", route["pending_change"])
	}
	resp, list := p.call(t, "GET", "/admin/changes", veraToken, "")
	if changes, _ := list["changes"].([]any); resp.StatusCode != 200 || len(changes) != 1 {
		t.Errorf("GET /admin/changes: got %d %v, want the one pending request", resp.StatusCode, list)
	}

	t.Run("its requester may not approve it", func(t *testing.T) {
		resp, body := p.decide(t, id, "approve", bobToken, "")
		if msg, _ := body["error"].(string); resp.StatusCode != http.StatusForbidden || msg != fmt.Sprintf("bob requested change request %d: another token name must approve it (four eyes)", id) {
			t.Errorf("got %d %q, want 403 saying another token name must approve", resp.StatusCode, msg)
		}
		if got := p.auditActions(t)[0]; got != "bob denied get-patient" {
			t.Errorf("latest audit entry %q, want the self-approval refused", got)
		}
		if got, want := p.served("get-patient"), "fallback"; got != want {
			t.Errorf("after the self-approval: got %s, want %s", got, want)
		}
	})
	t.Run("a viewer may not approve it", func(t *testing.T) {
		if resp, body := p.decide(t, id, "approve", veraToken, ""); resp.StatusCode != http.StatusForbidden || body["needs_role"] != "operator" {
			t.Errorf("got %d %v, want 403 needing the operator role", resp.StatusCode, body)
		}
	})
	t.Run("another token name's approval applies it, as the requester's flip", func(t *testing.T) {
		resp, body := p.decide(t, id, "approve", aliceToken, "checked the report")
		cr, _ := body["change_request"].(map[string]any)
		if resp.StatusCode != 200 || cr["state"] != "applied" || cr["decided_by"] != "alice" || !slices.Equal(cr["approved_by"].([]any), []any{"alice"}) {
			t.Fatalf("got %d %v, want it applied by alice", resp.StatusCode, body)
		}
		if got, want := p.served("get-patient"), "modern"; got != want {
			t.Errorf("after the approval: got %s, want %s", got, want)
		}
		entries, _ := p.store.AuditLog(context.Background(), store.AuditFilter{Route: "get-patient", Limit: 3})
		if got := []string{entries[0].Actor + " " + entries[0].Action, entries[1].Actor + " " + entries[1].Action}; !slices.Equal(got, []string{"bob flip", "alice change_approve"}) ||
			entries[0].Detail != fmt.Sprintf("change request %d, approved by alice", id) || entries[0].Reason != "backfill done" || entries[1].Reason != "checked the report" {
			t.Errorf("the audit log ends with %+v, want alice's approval then bob's flip naming her", entries[:2])
		}
		if resp, body := p.decide(t, id, "approve", tempToken, ""); resp.StatusCode != http.StatusConflict || !strings.Contains(body["error"].(string), "is applied by alice") {
			t.Errorf("approving it again: got %d %v, want 409 saying it is applied", resp.StatusCode, body)
		}
	})
	t.Run("moving the route back needs no approval", func(t *testing.T) {
		resp, body := p.patch(t, "get-patient", bobToken, `{"mode": "fallback", "reason": "errors"}`)
		if resp.StatusCode != 200 || body["mode"] != "fallback" {
			t.Errorf("a rollback: got %d %v, want it applied at once", resp.StatusCode, body)
		}
		resp, body = p.patch(t, "get-patient", bobToken, `{"mode": "fallback", "percent": 50, "reason": "less"}`)
		if resp.StatusCode != 200 || body["percent"] != 50.0 {
			t.Errorf("less to modern: got %d %v, want it applied at once", resp.StatusCode, body)
		}
	})
	t.Run("the guard's rollback needs no approval", func(t *testing.T) {
		guard := NewGuard(p.flags, p.counters, p.store, p.reg, p.log, p.clock.Now)
		p.modernFails("get-patient", 25)
		guard.Check(context.Background())
		if got, want := p.served("get-patient"), "legacy"; got != want {
			t.Errorf("the guard's rollback: got %s, want %s", got, want)
		}
	})
	t.Run("a forced flip needs approval too", func(t *testing.T) {
		p.requestFlip(t, "create-patient", aliceToken, `{"mode": "dual-write", "force": true, "reason": "go"}`)
	})
}

func TestAChangeRequestExpiresAfter24Hours(t *testing.T) {
	p := newApprovalsPlane(t)
	ctx := context.Background()
	id := p.requestFlip(t, "get-patient", bobToken, `{"mode": "modern", "reason": "backfill done"}`)
	t.Run("a second request for the route waits for the first", func(t *testing.T) {
		resp, body := p.patch(t, "get-patient", aliceToken, `{"mode": "modern", "percent": 10, "reason": "smaller"}`)
		if msg, _ := body["error"].(string); resp.StatusCode != http.StatusConflict || !strings.Contains(msg, fmt.Sprintf("get-patient has a pending change request already: %d, bob's fallback → modern", id)) {
			t.Errorf("got %d %q, want 409 naming bob's request", resp.StatusCode, msg)
		}
	})
	p.clock.Advance(24*time.Hour - time.Second)
	p.rollouts.Check(ctx)
	if c, _ := p.rollouts.Change(ctx, id); c.State != store.ChangePending {
		t.Fatalf("a second before 24 h: %s, want pending", c.State)
	}
	p.clock.Advance(time.Second)
	_, body := p.call(t, "GET", fmt.Sprintf("/admin/changes/%d", id), veraToken, "")
	if body["state"] != "expired" {
		t.Errorf("24 h on, before the driver's round: shown %v, want expired", body["state"])
	}
	p.rollouts.Check(ctx)
	p.rollouts.Check(ctx)
	resp, body := p.decide(t, id, "approve", aliceToken, "")
	if msg, _ := body["error"].(string); resp.StatusCode != http.StatusConflict || !strings.Contains(msg, fmt.Sprintf("change request %d expired at 2026-11-02T12:00:00Z without enough approvals; ask for a new one", id)) {
		t.Errorf("approving it: got %d %q, want 409 saying it expired", resp.StatusCode, msg)
	}
	if got, want := p.served("get-patient"), "fallback"; got != want {
		t.Errorf("after the expiry: got %s, want %s", got, want)
	}
	var expired []string
	for _, a := range p.auditActions(t) {
		if strings.Contains(a, "change_expired") {
			expired = append(expired, a)
		}
	}
	if !slices.Equal(expired, []string{"bob change_expired get-patient"}) {
		t.Errorf("expiry audit entries %q, want one", expired)
	}
	p.requestFlip(t, "get-patient", aliceToken, `{"mode": "modern", "reason": "again"}`)
}

func TestAnExpiredRequestIsRefusedEvenBeforeTheDriverSawIt(t *testing.T) {
	p := newApprovalsPlane(t)
	id := p.requestFlip(t, "get-patient", bobToken, `{"mode": "modern", "reason": "backfill done"}`)
	p.clock.Advance(25 * time.Hour)
	if resp, _ := p.decide(t, id, "approve", aliceToken, ""); resp.StatusCode != http.StatusConflict {
		t.Errorf("got %d, want 409", resp.StatusCode)
	}
	if got := p.auditActions(t); !slices.Contains(got, "bob change_expired get-patient") {
		t.Errorf("audit %q lacks the expiry", got)
	}
}

func TestARejectedRequestIsNeverApplied(t *testing.T) {
	p := newApprovalsPlane(t)
	id := p.requestFlip(t, "get-patient", bobToken, `{"mode": "modern", "reason": "backfill done"}`)
	if resp, body := p.decide(t, id, "reject", aliceToken, ""); resp.StatusCode != 400 || !strings.Contains(body["error"].(string), "a reason is required") {
		t.Errorf("a rejection without a reason: got %d %v, want 400", resp.StatusCode, body)
	}
	resp, body := p.decide(t, id, "reject", aliceToken, "fallbacks still at 2%")
	if cr, _ := body["change_request"].(map[string]any); resp.StatusCode != 200 || cr["state"] != "rejected" || cr["decision"] != "fallbacks still at 2%" {
		t.Fatalf("got %d %v, want it rejected with alice's reason", resp.StatusCode, body)
	}
	if resp, _ := p.decide(t, id, "approve", tempToken, ""); resp.StatusCode != http.StatusConflict {
		t.Errorf("approving a rejected request: got %d, want 409", resp.StatusCode)
	}
	if got, want := p.served("get-patient"), "fallback"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if got := p.auditActions(t)[1]; got != "alice change_reject get-patient" {
		t.Errorf("audit entry %q, want alice's rejection", got)
	}
	t.Run("its requester may withdraw a request", func(t *testing.T) {
		id := p.requestFlip(t, "get-patient", bobToken, `{"mode": "modern", "reason": "again"}`)
		if resp, body := p.decide(t, id, "reject", bobToken, "too early"); resp.StatusCode != 200 {
			t.Errorf("got %d %v, want 200", resp.StatusCode, body)
		}
		entries, _ := p.store.AuditLog(context.Background(), store.AuditFilter{Limit: 1})
		if !strings.HasSuffix(entries[0].Detail, "withdrawn by its requester") {
			t.Errorf("audit detail %q, want it withdrawn", entries[0].Detail)
		}
	})
}

func TestApprovingARequestWhoseRouteChangedAppliesNothing(t *testing.T) {
	p := newApprovalsPlane(t)
	id := p.requestFlip(t, "get-patient", bobToken, `{"mode": "modern", "reason": "backfill done"}`)
	p.flip(t, "get-patient", domain.ModeLegacy, nil) // alice rolls it back meanwhile
	resp, body := p.decide(t, id, "approve", aliceToken, "")
	if msg, _ := body["error"].(string); resp.StatusCode != http.StatusConflict ||
		!strings.Contains(msg, "nothing was applied: get-patient changed since the request was made: it is legacy, set by alice") {
		t.Errorf("got %d %q, want 409 saying the route changed", resp.StatusCode, msg)
	}
	if got, want := p.served("get-patient"), "legacy"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if c, _ := p.rollouts.Change(context.Background(), id); c.State != store.ChangeStale {
		t.Errorf("the request is %s, want stale", c.State)
	}
	t.Run("nor a ramp's", func(t *testing.T) {
		resp, out := p.patch(t, "get-patient", bobToken, `{"ramp": {"steps": [10, 100], "every": "1h", "mode": "fallback"}, "reason": "ramp it"}`)
		cr, _ := out["change_request"].(map[string]any)
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("a ramp's request: got %d %v", resp.StatusCode, out)
		}
		mode := domain.ModeFallback // alice, meanwhile, approved
		if _, err := p.flags.Apply(context.Background(), Flip{Route: "get-patient", Actor: "alice", Reason: "half", Mode: &mode, Percent: pct(50), approved: true}); err != nil {
			t.Fatal(err)
		}
		if resp, body := p.decide(t, int64(cr["id"].(float64)), "approve", aliceToken, ""); resp.StatusCode != http.StatusConflict {
			t.Errorf("got %d %v, want 409", resp.StatusCode, body)
		}
		if r := p.ramp(t, "get-patient"); r != nil {
			t.Errorf("a stale ramp request started the ramp %v", r)
		}
	})
}

func TestAnApprovalTheGatesRefuseLeavesTheRequestPending(t *testing.T) {
	p := newApprovalsPlane(t)
	id := p.requestFlip(t, "get-patient", bobToken, `{"mode": "modern", "reason": "backfill done"}`)
	r := p.counters.Route("get-patient")
	for range 10 {
		r.Fallback(p.clock.Now())
	}
	resp, body := p.decide(t, id, "approve", aliceToken, "")
	if msg, _ := body["error"].(string); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(msg, "fallback rate") {
		t.Errorf("got %d %q, want 422 naming the gate", resp.StatusCode, msg)
	}
	if c, _ := p.rollouts.Change(context.Background(), id); c.State != store.ChangePending || len(c.Approvers) != 0 {
		t.Errorf("the request is %+v, want pending without the approval", c)
	}
}

func TestThreeApprovalsNeedTwoOtherTokenNames(t *testing.T) {
	p := newPlaneWith(t, planeOptions{yaml: "approvals: 3\n"})
	id := p.requestFlip(t, "create-patient", bobToken, `{"mode": "shadow", "reason": "copy reads"}`)
	resp, body := p.decide(t, id, "approve", aliceToken, "")
	if cr, _ := body["change_request"].(map[string]any); resp.StatusCode != 200 || cr["state"] != "pending" {
		t.Fatalf("the first approval: got %d %v, want still pending", resp.StatusCode, body)
	}
	if resp, _ := p.decide(t, id, "approve", aliceToken, ""); resp.StatusCode != http.StatusConflict {
		t.Errorf("the same name again: got %d, want 409", resp.StatusCode)
	}
	if got, want := p.served("create-patient"), "legacy"; got != want {
		t.Errorf("after one approval of two: got %s, want %s", got, want)
	}
	if resp, body := p.decide(t, id, "approve", tempToken, ""); resp.StatusCode != 200 {
		t.Fatalf("the second approval: got %d %v", resp.StatusCode, body)
	}
	if got, want := p.served("create-patient"), "shadow"; got != want {
		t.Errorf("after both approvals: got %s, want %s", got, want)
	}
}

func TestARampOnARouteWithApprovalsIsApprovedOnce(t *testing.T) {
	p := newApprovalsPlane(t)
	ctx := context.Background()
	p.atZero(t)
	resp, out := p.patch(t, "get-patient", bobToken, `{"ramp": {"steps": [1, 50, 100], "every": "1h"}, "reason": "ticket 9"}`)
	cr, _ := out["change_request"].(map[string]any)
	if resp.StatusCode != http.StatusAccepted || cr["kind"] != "ramp" || cr["summary"] != "ramp to fallback at 1%, 50%, 100% every 1h" {
		t.Fatalf("a ramp on a route with approvals: got %d %v, want 202 with a ramp's change request", resp.StatusCode, out)
	}
	p.rollouts.Check(ctx)
	if got, want := p.served("get-patient"), "fallback 0%"; got != want {
		t.Fatalf("before the approval: got %s, want %s", got, want)
	}
	if resp, body := p.decide(t, int64(cr["id"].(float64)), "approve", aliceToken, "ok"); resp.StatusCode != 200 {
		t.Fatalf("approval: got %d %v", resp.StatusCode, body)
	}
	if r := p.ramp(t, "get-patient"); r["state"] != "running" || r["approved_by"] != "alice" || r["started_by"] != "bob" {
		t.Errorf("after the approval the ramp is %v, want bob's, approved by alice, running", r)
	}
	if resp, body := p.patch(t, "get-patient", aliceToken, `{"ramp": {"steps": [20, 100], "every": "1h"}, "reason": "faster"}`); resp.StatusCode != http.StatusConflict {
		t.Errorf("a second ramp while it runs: got %d %v, want 409, not a change request", resp.StatusCode, body)
	}
	for range 3 {
		p.rollouts.Check(ctx)
		p.clock.Advance(time.Hour)
	}
	if got, want := p.served("get-patient"), "fallback 100%"; got != want {
		t.Errorf("its steps, each without another approval: got %s, want %s", got, want)
	}
	entries, _ := p.store.AuditLog(ctx, store.AuditFilter{Route: "get-patient", Limit: 1})
	if !strings.Contains(entries[0].Detail, "approved by alice") || entries[0].Actor != config.RampActor {
		t.Errorf("the last step's entry %+v, want the ramp's, naming the approval", entries[0])
	}
}

// TestAnApprovalsReasonIsBoundedToo: an approval's reason is optional,
// but, from the API or the status page, no longer and no less plain than
// any other reason in the audit log.
func TestAnApprovalsReasonIsBoundedToo(t *testing.T) {
	p := newApprovalsPlane(t)
	id := p.requestFlip(t, "get-patient", bobToken, `{"mode": "modern", "reason": "backfill done"}`)
	for _, reason := range []string{strings.Repeat("x", maxReason+1), `fine\nforged line`} {
		resp, body := p.decide(t, id, "approve", aliceToken, reason)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("approving with the reason %.20q: got %d %v, want 400", reason, resp.StatusCode, body)
		}
	}
	if p.mode("get-patient") != domain.ModeFallback {
		t.Fatalf("a refused approval applied the change: %s", p.mode("get-patient"))
	}
	c, err := p.rollouts.Approve(context.Background(), id, "alice", strings.Repeat("y", maxReason+1), p.admin.whyMayNotChange)
	if err == nil || c.State == store.ChangeApplied {
		t.Errorf("Approve, as the status page calls it, with a reason of %d characters: %v, %s", maxReason+1, err, c.State)
	}
	if resp, body := p.decide(t, id, "approve", aliceToken, "looks right"); resp.StatusCode != http.StatusOK {
		t.Errorf("then a plain approval: got %d %v, want 200", resp.StatusCode, body)
	}
}

// TestAnApprovalThatReachesTheStoreAfterTheExpiryAppliesNothing: alice
// approves bob's request a millisecond before it expires, and the gates
// check takes a second, so the approval reaches the store after the
// expiry. Nothing is applied: 409 saying that it expired, the route where
// it was, the request expired, no approval in the audit log.
func TestAnApprovalThatReachesTheStoreAfterTheExpiryAppliesNothing(t *testing.T) {
	p := newApprovalsPlane(t)
	id := p.requestFlip(t, "get-patient", bobToken, `{"mode": "modern", "reason": "backfill done"}`)
	c, err := p.store.Change(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	p.clock.set(c.ExpiresAt.Add(-time.Millisecond))
	flush := p.reports.Flush
	p.reports.Flush = func(ctx context.Context) error {
		p.clock.Advance(time.Second) // a slow gates check
		return flush(ctx)
	}
	resp, out := p.decide(t, id, "approve", aliceToken, "")
	if resp.StatusCode != http.StatusConflict || !strings.Contains(fmt.Sprint(out["error"]), "expired") {
		t.Errorf("the approval answered %d %v, want 409 saying the request expired", resp.StatusCode, out)
	}
	if got := p.served("get-patient"); got != "fallback" {
		t.Errorf("get-patient serves %s, want fallback: nothing applied", got)
	}
	if c, _ := p.store.Change(t.Context(), id); c.State != store.ChangeExpired {
		t.Errorf("the request is %s, want expired", c.State)
	}
	entries, _ := p.store.AuditLog(t.Context(), store.AuditFilter{Route: "get-patient", Limit: 1000})
	for _, e := range entries {
		if e.Action == "change_approve" || e.Action == "flip" {
			t.Errorf("the audit log holds %s by %s, want no approval and no flip", e.Action, e.Actor)
		}
	}
}
