package control

import (
	"cmp"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/config"
	"strangler/domain"
	"strangler/store"
)

// reload gives the plane a new configuration file: its current one with
// edit applied to a copy of the routes, as a reload would.
func (p *plane) reload(t *testing.T, edit func([]config.Route) []config.Route) {
	t.Helper()
	p.reloadConfig(t, func(cfg *config.Config) { cfg.Routes = edit(slices.Clone(cfg.Routes)) })
}

// reloadConfig gives the plane a new configuration file: a copy of its
// current one, edited.
func (p *plane) reloadConfig(t *testing.T, edit func(*config.Config)) {
	t.Helper()
	cfg := *p.flags.file.Load()
	edit(&cfg)
	if err := p.flags.SetFile(&cfg); err != nil {
		t.Fatal(err)
	}
}

// TestAClearApprovedAfterAReloadMovedTheFilesModeAppliesNothing: a clear
// asks to take the route to the file's mode as it was when it was
// requested. A reload that changes that mode changes what approving the
// clear would do, so the request is void, as it is when the route moved.
func TestAClearApprovedAfterAReloadMovedTheFilesModeAppliesNothing(t *testing.T) {
	p := newApprovalsPlane(t)
	p.flip(t, "get-patient", domain.ModeShadow, nil) // rolled back: no approval needed
	id := p.requestFlip(t, "get-patient", bobToken, `{"clear": true, "reason": "back to the file"}`)
	if c, _ := p.rollouts.Change(context.Background(), id); changeText(c) != "clear: shadow → fallback" {
		t.Fatalf("the request asks for %q, want clear: shadow → fallback", changeText(c))
	}
	p.reload(t, func(rs []config.Route) []config.Route {
		rs[slices.IndexFunc(rs, func(r config.Route) bool { return r.Name == "get-patient" })].Mode = domain.ModeModern
		return rs
	})
	resp, body := p.decide(t, id, "approve", aliceToken, "")
	if msg, _ := body["error"].(string); resp.StatusCode != http.StatusConflict ||
		!strings.Contains(msg, "nothing was applied: get-patient changed since the request was made") {
		t.Errorf("approving the clear: got %d %q, want 409 saying the route changed", resp.StatusCode, msg)
	}
	if got, want := p.served("get-patient"), "shadow"; got != want {
		t.Errorf("the route is served %s, want %s: nobody approved modern", got, want)
	}
	if c, _ := p.rollouts.Change(context.Background(), id); c.State != store.ChangeStale {
		t.Errorf("the request is %s, want stale", c.State)
	}
}

// TestAFlipApprovedAfterAReloadMovedTheRouteAppliesNothing: with no
// override the route's version stays 0 across a reload, but the route is
// no longer where the request found it.
func TestAFlipApprovedAfterAReloadMovedTheRouteAppliesNothing(t *testing.T) {
	p := newApprovalsPlane(t)
	id := p.requestFlip(t, "create-patient", bobToken, `{"mode": "shadow", "reason": "copy reads"}`)
	p.reload(t, func(rs []config.Route) []config.Route {
		rs[slices.IndexFunc(rs, func(r config.Route) bool { return r.Name == "create-patient" })].Mode = domain.ModeFallback
		return rs
	})
	resp, body := p.decide(t, id, "approve", aliceToken, "")
	if msg, _ := body["error"].(string); resp.StatusCode != http.StatusConflict ||
		!strings.Contains(msg, "create-patient changed since the request was made: it is fallback") {
		t.Errorf("approving the flip: got %d %q, want 409 saying the route is fallback now", resp.StatusCode, msg)
	}
	if got, want := p.served("create-patient"), "fallback"; got != want {
		t.Errorf("the route is served %s, want %s", got, want)
	}
}

// TestApprovingARequestWhoseRouteAReloadRemovedVoidsIt: the route is
// gone, so the request can never be applied; it is void (audited), not
// left pending to apply should a route of that name come back.
func TestApprovingARequestWhoseRouteAReloadRemovedVoidsIt(t *testing.T) {
	p := newApprovalsPlane(t)
	id := p.requestFlip(t, "create-patient", bobToken, `{"mode": "shadow", "reason": "copy reads"}`)
	keep := p.flags.file.Load().Routes
	p.reload(t, func(rs []config.Route) []config.Route {
		return slices.DeleteFunc(rs, func(r config.Route) bool { return r.Name == "create-patient" })
	})
	resp, body := p.decide(t, id, "approve", aliceToken, "")
	if msg, _ := body["error"].(string); resp.StatusCode != http.StatusConflict ||
		!strings.Contains(msg, "create-patient is no longer in the configuration") {
		t.Errorf("approving it: got %d %q, want 409 saying the route is gone", resp.StatusCode, msg)
	}
	if c, _ := p.rollouts.Change(context.Background(), id); c.State != store.ChangeStale {
		t.Errorf("the request is %s, want stale", c.State)
	}
	if got, want := p.auditActions(t)[:2], []string{"alice denied create-patient", "bob change_stale create-patient"}; !slices.Equal(got, want) {
		t.Errorf("the latest audit entries are %q, want %q: the request voided, the approval refused", got, want)
	}
	p.reload(t, func([]config.Route) []config.Route { return slices.Clone(keep) })
	if resp, body := p.decide(t, id, "approve", tempToken, ""); resp.StatusCode != http.StatusConflict {
		t.Errorf("approving it once the route is back: got %d %v, want 409", resp.StatusCode, body)
	}
	if got, want := p.served("create-patient"), "legacy"; got != want {
		t.Errorf("the route is served %s, want %s", got, want)
	}
}

// TestARequestPastItsExpiryIsNotPendingAnywhere: 24 hours on, before the
// driver's round records the expiry, every reader already takes the
// request for expired, as approving it does: the pending list, the
// route, the gauges, and a new request for the route, which replaces it
// (the expiry audited first) rather than being refused for it.
func TestARequestPastItsExpiryIsNotPendingAnywhere(t *testing.T) {
	p := newApprovalsPlane(t)
	old := p.requestFlip(t, "get-patient", bobToken, `{"mode": "modern", "reason": "backfill done"}`)
	p.clock.Advance(changeTTL)
	_, list := p.call(t, "GET", "/admin/changes", veraToken, "")
	if changes, _ := list["changes"].([]any); len(changes) != 0 {
		t.Errorf("GET /admin/changes lists %v, want no pending request", changes)
	}
	if _, route := p.call(t, "GET", "/admin/routes/get-patient", veraToken, ""); route["pending_change"] != nil {
		t.Errorf("the route shows pending_change %v, want none", route["pending_change"])
	}
	if got := p.rolloutGauges(t)["strangler_change_requests_pending"]; got != 0 {
		t.Errorf("strangler_change_requests_pending is %v, want 0", got)
	}
	id := p.requestFlip(t, "get-patient", aliceToken, `{"mode": "modern", "reason": "again"}`)
	if got, want := p.auditActions(t)[:2], []string{"alice change_request get-patient", "bob change_expired get-patient"}; !slices.Equal(got, want) {
		t.Errorf("the latest audit entries are %q, want %q", got, want)
	}
	if c, _ := p.store.Change(context.Background(), old); c.State != store.ChangeExpired {
		t.Errorf("the old request is %s, want expired", c.State)
	}
	if resp, body := p.decide(t, id, "approve", bobToken, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("approving the new request: got %d %v", resp.StatusCode, body)
	}
}

// TestARequestWhoseRequesterMayNoLongerChangeRoutesIsNotApplied: an
// approval applies the change as its requester's flip. A requester whose
// token a reload removed or made a viewer since, or whose token expired,
// may not change routes any more: approving their request applies
// nothing and voids it, audited.
func TestARequestWhoseRequesterMayNoLongerChangeRoutesIsNotApplied(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func([]config.Token) []config.Token
		ask  string // the requester's token
		// approve is the approver's token: alice's unless set.
		approve string
	}{
		// The same person, under another name: bob approves his own
		// request with his token renamed.
		{"renamed", func(ts []config.Token) []config.Token {
			ts[slices.IndexFunc(ts, func(t config.Token) bool { return t.Name == "bob" })].Name = "robert"
			return ts
		}, bobToken, bobToken},
		{"made a viewer", func(ts []config.Token) []config.Token {
			ts[slices.IndexFunc(ts, func(t config.Token) bool { return t.Name == "bob" })].Role = config.RoleViewer
			return ts
		}, bobToken, ""},
		{"removed", func(ts []config.Token) []config.Token {
			return slices.DeleteFunc(ts, func(t config.Token) bool { return t.Name == "bob" })
		}, bobToken, ""},
		{"expired", func(ts []config.Token) []config.Token { return ts }, tempToken, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newApprovalsPlane(t)
			// temp's token works through 2026-11-03: asked on its last
			// day, approved on the next.
			p.clock.Advance(49 * time.Hour)
			id := p.requestFlip(t, "create-patient", tc.ask, `{"mode": "shadow", "reason": "copy reads"}`)
			p.admin.Tokens.Set(tc.edit(slices.Clone(*p.admin.Tokens.list.Load())))
			p.clock.Advance(12 * time.Hour)
			approver := cmp.Or(tc.approve, aliceToken)
			resp, body := p.decide(t, id, "approve", approver, "")
			if msg, _ := body["error"].(string); resp.StatusCode != http.StatusConflict || !strings.Contains(msg, "may no longer change routes") {
				t.Errorf("approving: got %d %q, want 409 saying the requester may no longer change routes", resp.StatusCode, msg)
			}
			if got, want := p.served("create-patient"), "legacy"; got != want {
				t.Errorf("the route is served %s, want %s", got, want)
			}
			if c, _ := p.store.Change(context.Background(), id); c.State != store.ChangeStale {
				t.Errorf("the request is %s, want stale", c.State)
			}
		})
	}
}

// TestARequestApprovedAfterAReloadAskedForMoreApprovalsIsNotApplied: a
// reload raised approvals from 2 to 3 while a request waited for one
// approval. That one approval no longer suffices: nothing is applied,
// and the request is void, so that a new one asks for as many as the
// configuration does now.
func TestARequestApprovedAfterAReloadAskedForMoreApprovalsIsNotApplied(t *testing.T) {
	p := newApprovalsPlane(t)
	id := p.requestFlip(t, "create-patient", bobToken, `{"mode": "shadow", "reason": "copy reads"}`)
	p.reloadConfig(t, func(cfg *config.Config) { cfg.Approvals = 3 })
	resp, body := p.decide(t, id, "approve", aliceToken, "")
	if msg, _ := body["error"].(string); resp.StatusCode != http.StatusConflict ||
		!strings.Contains(msg, "create-patient now needs 3 token names to agree") {
		t.Errorf("approving: got %d %q, want 409 saying the route needs 3 token names now", resp.StatusCode, msg)
	}
	if got, want := p.served("create-patient"), "legacy"; got != want {
		t.Errorf("the route is served %s, want %s", got, want)
	}
	if c, _ := p.store.Change(context.Background(), id); c.State != store.ChangeStale {
		t.Errorf("the request is %s, want stale", c.State)
	}
}
