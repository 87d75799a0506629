package control

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
	"strangler/store"
)

// lostCommit runs change on plane p, whose store's answer to the COMMIT
// it sends is lost: the commit is made, and then the connection breaks,
// as when the server fails over at that instant. It waits until an
// observer (on the store directly) sees the audit entry entry ("actor
// action route") the change commits, runs meanwhile (if set) as
// another replica's change would, then breaks the connections, and
// returns once change has returned.
func lostCommit(t *testing.T, proxy *testdb.Proxy, observer *store.Store, entry string, change, meanwhile func()) {
	t.Helper()
	proxy.MuteOn("commit")
	done := make(chan struct{})
	go func() {
		defer close(done)
		change()
	}()
	testkit.Eventually(t, 10*time.Second, "the change committed", func() bool {
		log, err := observer.AuditLog(context.Background(), store.AuditFilter{Limit: 10})
		return err == nil && slices.ContainsFunc(log, func(e domain.AuditEntry) bool { return e.Actor+" "+e.Action+" "+e.Route == entry })
	})
	if meanwhile != nil {
		meanwhile()
	}
	proxy.Reset()
	<-done
}

// lostCommitPlane is a plane on a PostgreSQL store through a proxy, with
// yaml added to its configuration, and an observer on the store itself.
func lostCommitPlane(t *testing.T, yaml string) (*plane, *testdb.Proxy, *store.Store) {
	t.Helper()
	direct := testdb.Postgres(t)
	proxy, dsn := testdb.NewProxy(t, direct)
	p := newPlaneWith(t, planeOptions{dsn: dsn, yaml: yaml})
	observer, err := store.Open(context.Background(), direct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { observer.Close() })
	return p, proxy, observer
}

// send is plane.call for a goroutine: a request that fails is status 0.
func (p *plane) send(method, path, token, body string, header ...string) (status int, out map[string]any) {
	req, err := http.NewRequest(method, p.URL+path, strings.NewReader(body))
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := p.Client().Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestAFlipWhoseCommitLostItsAnswerIsToldAsMade: the store commits a
// flip, audit entry and all, and its answer is lost. Before, the facade
// answered that the flip was refused ("cannot be audited") and kept
// serving the route as it was, while the store and every other replica
// had it flipped; the guard logged its rollback as failed and counted
// none. Now it reads the route back: the flip was made.
func TestAFlipWhoseCommitLostItsAnswerIsToldAsMade(t *testing.T) {
	t.Run("an operator's flip", func(t *testing.T) {
		p, proxy, observer := lostCommitPlane(t, "")
		version := p.version(t, "get-patient")
		var status int
		var body map[string]any
		lostCommit(t, proxy, observer, "bob flip get-patient", func() {
			status, body = p.send("PATCH", "/admin/routes/get-patient", bobToken, `{"mode": "legacy", "reason": "modern is down"}`, "If-Match", version)
		}, nil)
		if status != http.StatusOK || body["mode"] != "legacy" {
			t.Errorf("the flip whose commit lost its answer: got %d %v, want 200 and legacy: it was made", status, body)
		}
		if got, want := p.served("get-patient"), "legacy"; got != want {
			t.Errorf("this replica serves the route as %s, want %s", got, want)
		}
		if got := p.auditActions(t); len(got) != 1 || got[0] != "bob flip get-patient" {
			t.Errorf("the audit log holds %q, want bob's one flip", got)
		}
	})

	t.Run("an operator's flip, changed again by another replica before it is read back", func(t *testing.T) {
		// Before, the read back found the route at another version, by
		// another actor, and answered that the flip was refused.
		p, proxy, observer := lostCommitPlane(t, "")
		rf, _ := p.flags.Get("get-patient")
		var status int
		var body map[string]any
		lostCommit(t, proxy, observer, "bob flip get-patient", func() {
			status, body = p.send("PATCH", "/admin/routes/get-patient", bobToken, `{"mode": "legacy", "reason": "modern is down"}`, "If-Match", etag(rf.Version))
		}, func() {
			if _, err := observer.SetOverride(context.Background(), domain.Override{Route: "get-patient", Mode: domain.ModeModern, Actor: "carol"}, rf.Version+1,
				domain.AuditEntry{Actor: "carol", Action: "flip", Route: "get-patient", Reason: "modern is back"}); err != nil {
				t.Fatal(err)
			}
		})
		if status != http.StatusOK {
			t.Errorf("the flip whose commit lost its answer: got %d %v, want 200: it was made", status, body)
		}
		if got := p.auditActions(t); !slices.Equal(got, []string{"carol flip get-patient", "bob flip get-patient"}) {
			t.Errorf("the audit log holds %q, want bob's flip and carol's after it", got)
		}
	})

	t.Run("the guard's rollback", func(t *testing.T) {
		p, proxy, observer := lostCommitPlane(t, "")
		guard := NewGuard(p.flags, p.counters, p.store, p.reg, p.log, p.clock.Now)
		p.flip(t, "get-patient", domain.ModeModern, nil)
		p.modernFails("get-patient", 25)
		lostCommit(t, proxy, observer, "guard rollback get-patient", func() { guard.Check(context.Background()) }, nil)
		if got := testutilCounter(t, p, "strangler_guard_rollbacks_total"); got != 1 {
			t.Errorf("strangler_guard_rollbacks_total: got %v, want 1", got)
		}
		if got := p.logs.matching(t, "guard rolled a route back"); len(got) != 1 {
			t.Errorf("the guard logged %d rollbacks, want 1", len(got))
		}
		if got, want := p.served("get-patient"), "fallback"; got != want {
			t.Errorf("this replica serves the route as %s, want %s", got, want)
		}
	})
}

// forceKey turns force tokens on.
const forceKey = "force_token_key: 6b65790000000000000000000000000000000000000000000000000000000000\n"

// TestAnAdminChangeWhoseCommitLostItsAnswerIsToldAsMade: every admin
// change the store commits with its audit entry, and whose answer is
// lost, is read back and answered as made. Before, only flips were:
// each of these answered 503, "unavailable" and refused, while it was
// made and audited, and a retry was refused as a conflict.
func TestAnAdminChangeWhoseCommitLostItsAnswerIsToldAsMade(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		// setup readies the plane and returns the call's path.
		setup               func(t *testing.T, p *plane) string
		method, token, body string
		ifMatch             string // the route whose version to send
		status              int
		entry               string
	}{
		{"a ramp's start", "", func(t *testing.T, p *plane) string {
			p.atZero(t)
			return "/admin/routes/get-patient"
		}, "PATCH", bobToken, `{"ramp": {"steps": [1, 5], "every": "30m"}, "reason": "ticket 7"}`, "get-patient", 200, "bob ramp_start get-patient"},
		{"a ramp's pause", "", func(t *testing.T, p *plane) string {
			p.atZero(t)
			p.startRamp(t, "get-patient", `{"steps": [1, 5], "every": "30m"}`)
			return "/admin/routes/get-patient"
		}, "PATCH", bobToken, `{"ramp": {"action": "pause"}, "reason": "hold on"}`, "get-patient", 200, "bob ramp_pause get-patient"},
		{"a change request", "approvals: 2\n", func(t *testing.T, p *plane) string {
			return "/admin/routes/create-patient"
		}, "PATCH", bobToken, `{"mode": "shadow", "reason": "start shadowing"}`, "create-patient", 202, "bob change_request create-patient"},
		{"the approval that applies a change", "approvals: 2\n", func(t *testing.T, p *plane) string {
			id := p.requestFlip(t, "create-patient", bobToken, `{"mode": "shadow", "reason": "start shadowing"}`)
			return fmt.Sprintf("/admin/changes/%d/approve", id)
		}, "POST", aliceToken, `{"reason": "looks right"}`, "", 200, "alice change_approve create-patient"},
		{"a repair's stop", "", func(t *testing.T, p *plane) string {
			p.resentWrite(t, "w-resent")
			return "/admin/repairs/w-resent/stop"
		}, "POST", aliceToken, `{"reason": "ticket 9"}`, "", 200, "alice repair_stop update-patient"},
		{"a force token", forceKey, func(t *testing.T, p *plane) string {
			return "/admin/routes/get-patient/force-token"
		}, "POST", aliceToken, `{"backend": "modern", "reason": "QA"}`, "", 201, "alice force_token get-patient"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, proxy, observer := lostCommitPlane(t, tc.yaml)
			path := tc.setup(t, p)
			var header []string
			if tc.ifMatch != "" {
				header = []string{"If-Match", p.version(t, tc.ifMatch)}
			}
			var status int
			var body map[string]any
			lostCommit(t, proxy, observer, tc.entry, func() {
				status, body = p.send(tc.method, path, tc.token, tc.body, header...)
			}, nil)
			if status != tc.status {
				t.Errorf("the change whose commit lost its answer: got %d %v, want %d: it was made", status, body, tc.status)
			}
			got := p.auditActions(t)
			if n := len(slices.DeleteFunc(slices.Clone(got), func(e string) bool { return e != tc.entry })); n != 1 {
				t.Errorf("the audit log holds %q, want %q once", got, tc.entry)
			}
		})
	}
}

// TestAnAdminChangeWhoseOutcomeCannotBeReadSaysItMayHaveBeenMade: the
// store goes away as a change's COMMIT goes out, so whether it was made
// cannot be read back. The answer says so, and how to find out, rather
// than that the store refused it.
func TestAnAdminChangeWhoseOutcomeCannotBeReadSaysItMayHaveBeenMade(t *testing.T) {
	t.Run("a repair's stop", func(t *testing.T) {
		p, proxy, _ := lostCommitPlane(t, "")
		p.resentWrite(t, "w-resent")
		proxy.GoneOn("commit")
		status, body := p.send("POST", "/admin/repairs/w-resent/stop", aliceToken, `{"reason": "ticket 9"}`)
		if msg, _ := body["error"].(string); status != http.StatusServiceUnavailable || msg != ErrUnconfirmed.Error() {
			t.Errorf("got %d %v, want 503 saying %q", status, body, ErrUnconfirmed)
		}
	})
	t.Run("a bulk discard, on the write it was at", func(t *testing.T) {
		p, proxy, _ := lostCommitPlane(t, "")
		deadWrites(t, p.store, "put-item", "w1")
		proxy.GoneOn("commit")
		status, body := p.send("POST", "/admin/repairs/discard", aliceToken, `{"route": "put-item", "state": "dead", "reason": "ticket 9"}`)
		if msg, _ := body["error"].(string); status != http.StatusServiceUnavailable ||
			!strings.Contains(msg, "did not confirm the repair_discard of write w1") || !strings.Contains(msg, "0 of 1 writes were done before it") {
			t.Errorf("got %d %v, want 503 saying w1's discard may have been done", status, body)
		}
	})
	t.Run("a force token, which is not issued", func(t *testing.T) {
		p, proxy, _ := lostCommitPlane(t, forceKey)
		proxy.GoneOn("commit")
		status, body := p.send("POST", "/admin/routes/get-patient/force-token", aliceToken, `{"backend": "modern", "reason": "QA"}`)
		if msg, _ := body["error"].(string); status != http.StatusServiceUnavailable || body["value"] != nil ||
			!strings.Contains(msg, "did not confirm the audit entry of the force token") || !strings.Contains(msg, "the audit log may list it as issued (id ") {
			t.Errorf("got %d %v, want 503 saying the token is not issued and its audit entry may be", status, body)
		}
	})
}

// resentWrite journals write id to update-patient and has it resent
// once to its primary, unanswered: a write an operator may stop.
func (p *plane) resentWrite(t *testing.T, id string) {
	t.Helper()
	ctx := context.Background()
	in := domain.Intent{ID: id, Route: "update-patient", Resource: "/patients/42", Method: "PUT", Target: "/patients/42",
		Primary: "legacy", Body: []byte(`{"name":"Ada"}`)}
	if err := p.store.BeginWrite(ctx, in, -time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := p.store.ResendUnanswered(ctx, id, 0, "resent to the primary (legacy), which answered 503 Service Unavailable", time.Hour, false); err != nil {
		t.Fatal(err)
	}
}
