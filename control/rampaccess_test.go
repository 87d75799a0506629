package control

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/config"
	"strangler/store"
)

// withTokens gives the plane's admin tokens, edited, as a reload would.
func (p *plane) withTokens(t *testing.T, edit func([]config.Token) []config.Token) {
	t.Helper()
	p.admin.Tokens.Set(edit(slices.Clone(p.flags.file.Load().Admin.AdminTokens())))
}

// lostAccess are the ways a token loses the right to change routes.
var lostAccess = []struct {
	name string
	lose func(name string) func([]config.Token) []config.Token
}{
	{"removed", func(name string) func([]config.Token) []config.Token {
		return func(ts []config.Token) []config.Token {
			return slices.DeleteFunc(ts, func(tok config.Token) bool { return tok.Name == name })
		}
	}},
	{"made a viewer", func(name string) func([]config.Token) []config.Token {
		return func(ts []config.Token) []config.Token {
			ts[slices.IndexFunc(ts, func(tok config.Token) bool { return tok.Name == name })].Role = config.RoleViewer
			return ts
		}
	}},
	{"expired", func(name string) func([]config.Token) []config.Token {
		return func(ts []config.Token) []config.Token {
			yesterday := config.Date{Time: time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC)}
			ts[slices.IndexFunc(ts, func(tok config.Token) bool { return tok.Name == name })].Expires = &yesterday
			return ts
		}
	}},
}

// TestARampPausesWhenItsStarterLosesAccess: a ramp's steps are flips in
// the name of whoever started it. Once that token is removed, expired or
// made a viewer, the ramp went on stepping, hours or days later, in the
// name of someone who may no longer change routes. It now pauses at its
// next look, audited (ramp_pause by ramp, saying who lost access) and
// logged; an operator resumes it, and it goes on as theirs.
func TestARampPausesWhenItsStarterLosesAccess(t *testing.T) {
	for _, tc := range lostAccess {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlane(t)
			ctx := context.Background()
			p.atZero(t)
			p.startRamp(t, "get-patient", `{"steps": [1, 5, 25], "every": "30m"}`)
			p.rollouts.Check(ctx)
			if got, want := p.served("get-patient"), "fallback 1%"; got != want {
				t.Fatalf("the first step: got %s, want %s", got, want)
			}
			p.withTokens(t, tc.lose("bob"))
			p.clock.Advance(30 * time.Minute)
			p.rollouts.Check(ctx)
			if got, want := p.served("get-patient"), "fallback 1%"; got != want {
				t.Errorf("after bob lost access: got %s, want %s (no step in his name)", got, want)
			}
			r := p.ramp(t, "get-patient")
			if note, _ := r["note"].(string); r["state"] != "paused" || !strings.Contains(note, "bob, who started it, may no longer change routes") {
				t.Errorf("the ramp is %v, want paused, saying bob may no longer change routes", r)
			}
			entries, err := p.store.AuditLog(ctx, store.AuditFilter{Route: "get-patient", Limit: 1})
			if err != nil {
				t.Fatal(err)
			}
			if e := entries[0]; e.Actor != config.RampActor || e.Action != "ramp_pause" || !strings.Contains(e.Detail, "bob, who started it") {
				t.Errorf("the latest audit entry is %s %s %q, want ramp's ramp_pause naming bob", e.Actor, e.Action, e.Detail)
			}
			if got := len(p.logs.matching(t, "ramp paused: who started or approved it may no longer change routes")); got != 1 {
				t.Errorf("%d log lines say why the ramp paused, want 1", got)
			}

			resp, body := p.patch(t, "get-patient", aliceToken, `{"ramp": {"action": "resume"}, "reason": "taking it over"}`)
			if r, _ := body["ramp"].(map[string]any); resp.StatusCode != http.StatusOK || r["state"] != "running" || r["started_by"] != "alice" {
				t.Fatalf("alice's resume: got %d %v, want 200, running as alice's", resp.StatusCode, body)
			}
			p.clock.Advance(30 * time.Minute)
			p.rollouts.Check(ctx)
			if got, want := p.served("get-patient"), "fallback 5%"; got != want {
				t.Errorf("after alice resumed it: got %s, want %s", got, want)
			}
		})
	}
}

// TestAFourEyesRampPausesWhenItsApproverLosesAccess: a ramp on a route
// that needs approvals was approved once for all of its steps. Once its
// approver (or its starter) may no longer change routes, the approval
// belonged to people who no longer have access: the ramp pauses, and
// resuming it is refused (one operator would go on alone where the route
// needs two); cancel it and ask again.
func TestAFourEyesRampPausesWhenItsApproverLosesAccess(t *testing.T) {
	for _, who := range []struct{ name, did string }{{"alice", "approved"}, {"bob", "started"}} {
		for _, tc := range lostAccess {
			t.Run(who.name+" "+tc.name, func(t *testing.T) {
				p := newApprovalsPlane(t)
				ctx := context.Background()
				p.atZero(t)
				resp, out := p.patch(t, "get-patient", bobToken, `{"ramp": {"steps": [1, 50, 100], "every": "1h"}, "reason": "ticket 9"}`)
				cr, _ := out["change_request"].(map[string]any)
				if resp.StatusCode != http.StatusAccepted {
					t.Fatalf("the ramp's request: got %d %v", resp.StatusCode, out)
				}
				if resp, body := p.decide(t, int64(cr["id"].(float64)), "approve", aliceToken, "ok"); resp.StatusCode != http.StatusOK {
					t.Fatalf("approval: got %d %v", resp.StatusCode, body)
				}
				p.rollouts.Check(ctx)
				if got, want := p.served("get-patient"), "fallback 1%"; got != want {
					t.Fatalf("the first step: got %s, want %s", got, want)
				}
				p.withTokens(t, tc.lose(who.name))
				p.clock.Advance(time.Hour)
				p.rollouts.Check(ctx)
				if got, want := p.served("get-patient"), "fallback 1%"; got != want {
					t.Errorf("after %s lost access: got %s, want %s", who.name, got, want)
				}
				r := p.ramp(t, "get-patient")
				if note, _ := r["note"].(string); r["state"] != "paused" || !strings.Contains(note, who.name+", who "+who.did+" it, may no longer change routes") ||
					!strings.Contains(note, "cancel it and start it again") {
					t.Errorf("the ramp is %v, want paused, saying %s may no longer change routes and to ask again", r, who.name)
				}
				resumer := map[string]string{"alice": bobToken, "bob": aliceToken}[who.name] // the other, who still may
				resp, body := p.patch(t, "get-patient", resumer, `{"ramp": {"action": "resume"}, "reason": "go on"}`)
				if msg, _ := body["error"].(string); resp.StatusCode != http.StatusConflict || !strings.Contains(msg, "cannot be resumed") {
					t.Errorf("resuming it: got %d %v, want 409 saying it cannot be resumed", resp.StatusCode, body)
				}
				p.clock.Advance(time.Hour)
				p.rollouts.Check(ctx)
				if got, want := p.served("get-patient"), "fallback 1%"; got != want {
					t.Errorf("after the refused resume: got %s, want %s", got, want)
				}
			})
		}
	}
}
