package control

import (
	"context"
	"encoding/json"
	"net/http"
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
// observer (on the store directly) sees route's override by actor, then
// breaks the connections, and returns once change has returned.
func lostCommit(t *testing.T, proxy *testdb.Proxy, observer *store.Store, route, actor string, change func()) {
	t.Helper()
	proxy.MuteOn("commit")
	done := make(chan struct{})
	go func() {
		defer close(done)
		change()
	}()
	testkit.Eventually(t, 10*time.Second, "the change committed", func() bool {
		o, err := observer.Overrides(context.Background())
		return err == nil && o[route].Actor == actor
	})
	proxy.Reset()
	<-done
}

// lostCommitPlane is a plane on a PostgreSQL store through a proxy, and
// an observer on the store itself.
func lostCommitPlane(t *testing.T) (*plane, *testdb.Proxy, *store.Store) {
	t.Helper()
	direct := testdb.Postgres(t)
	proxy, dsn := testdb.NewProxy(t, direct)
	p := newPlaneWith(t, planeOptions{dsn: dsn})
	observer, err := store.Open(context.Background(), direct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { observer.Close() })
	return p, proxy, observer
}

// TestAFlipWhoseCommitLostItsAnswerIsToldAsMade: the store commits a
// flip, audit entry and all, and its answer is lost. Before, the facade
// answered that the flip was refused ("cannot be audited") and kept
// serving the route as it was, while the store and every other replica
// had it flipped; the guard logged its rollback as failed and counted
// none. Now it reads the route back: the flip was made.
func TestAFlipWhoseCommitLostItsAnswerIsToldAsMade(t *testing.T) {
	t.Run("an operator's flip", func(t *testing.T) {
		p, proxy, observer := lostCommitPlane(t)
		version := p.version(t, "get-patient")
		var status int
		var body map[string]any
		lostCommit(t, proxy, observer, "get-patient", "bob", func() {
			req, _ := http.NewRequest("PATCH", p.URL+"/admin/routes/get-patient", strings.NewReader(`{"mode": "legacy", "reason": "modern is down"}`))
			req.Header.Set("Authorization", "Bearer "+bobToken)
			req.Header.Set("If-Match", version)
			req.Header.Set("Content-Type", "application/json")
			resp, err := p.Client().Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			status = resp.StatusCode
			json.NewDecoder(resp.Body).Decode(&body)
		})
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

	t.Run("the guard's rollback", func(t *testing.T) {
		p, proxy, observer := lostCommitPlane(t)
		guard := NewGuard(p.flags, p.counters, p.store, p.reg, p.log, p.clock.Now)
		p.flip(t, "get-patient", domain.ModeModern, nil)
		p.modernFails("get-patient", 25)
		lostCommit(t, proxy, observer, "get-patient", "guard", func() { guard.Check(context.Background()) })
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
