package control

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/domain"
	"strangler/store"
)

// deadWrites journals writes of route that the primary applied and the
// secondary refused for good, as the facade and its worker do, and
// returns their ids.
func deadWrites(t *testing.T, st *store.Store, route string, ids ...string) []string {
	t.Helper()
	ctx := context.Background()
	for _, id := range ids {
		w := domain.Intent{ID: id, Route: route, Resource: route + "/" + id, Method: http.MethodPut, Target: "/x/" + id,
			Header: http.Header{}, Body: []byte(`{}`), Primary: domain.Legacy}
		if err := st.BeginWrite(ctx, w, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := st.RecordOutcome(ctx, id, domain.Outcome{Status: 200}); err != nil {
			t.Fatal(err)
		}
	}
	claimed, err := st.ClaimRepairs(ctx, "worker", 100, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range claimed {
		if err := st.FailRepair(ctx, r.ID, "worker", "400 from modern", 0, true); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// TestEveryDeadWriteOfARetiredRouteIsDiscardedInOneCall: discarding (or
// retrying) the dead letters of a route was one call per write. One call
// now takes every write of a route in a state: a dry run first lists
// them and changes nothing; the call itself moves each by the move a
// single discard makes and audits each with the reason; other routes'
// writes are left alone, and a state the facade still works on (pending)
// is refused.
func TestEveryDeadWriteOfARetiredRouteIsDiscardedInOneCall(t *testing.T) {
	p := newPlane(t)
	deadWrites(t, p.store, "put-item", "w1", "w2", "w3")
	deadWrites(t, p.store, "put-order", "w4")
	audited := len(p.auditActions(t))

	t.Run("a dry run lists them and changes nothing", func(t *testing.T) {
		resp, body := p.call(t, "POST", "/admin/repairs/discard", aliceToken, `{"route":"put-item","state":"dead","dry_run":true}`)
		matched, _ := body["matched"].([]any)
		if resp.StatusCode != 200 || len(matched) != 3 || body["done"] != 0.0 {
			t.Fatalf("got %d %v, want the 3 dead writes of put-item listed, none done", resp.StatusCode, body)
		}
		if got := len(p.auditActions(t)); got != audited {
			t.Errorf("a dry run wrote %d audit entries", got-audited)
		}
	})
	for _, tc := range []struct{ name, token, body string }{
		{"without a reason", aliceToken, `{"route":"put-item","state":"dead"}`},
		{"without a route", aliceToken, `{"state":"dead","reason":"retired"}`},
		{"for pending writes, which the facade delivers", aliceToken, `{"route":"put-item","state":"pending","reason":"retired"}`},
		{"for an operator, not an admin", bobToken, `{"route":"put-item","state":"dead","reason":"retired"}`},
	} {
		t.Run("a call "+tc.name+" is refused", func(t *testing.T) {
			resp, body := p.call(t, "POST", "/admin/repairs/discard", tc.token, tc.body)
			if resp.StatusCode != 400 && resp.StatusCode != 403 {
				t.Errorf("got %d %v, want a refusal", resp.StatusCode, body)
			}
		})
	}
	t.Run("the call discards each and audits each", func(t *testing.T) {
		resp, body := p.call(t, "POST", "/admin/repairs/discard", aliceToken, `{"route":"put-item","state":"dead","reason":"put-item retired, ticket 9"}`)
		if resp.StatusCode != 200 || body["done"] != 3.0 || body["more"] != false {
			t.Fatalf("got %d %v, want 3 done", resp.StatusCode, body)
		}
		entries, err := p.store.AuditLog(context.Background(), store.AuditFilter{Route: "put-item"})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range entries {
			if e.Action == "repair_discard" && e.Actor == "alice" && e.Reason == "put-item retired, ticket 9" {
				ids = append(ids, e.Detail)
			}
		}
		slices.Sort(ids)
		if strings.Join(ids, ",") != "w1,w2,w3" {
			t.Errorf("discards audited for %v, want w1,w2,w3", ids)
		}
		for id, want := range map[string]domain.State{"w1": domain.StateDiscarded, "w3": domain.StateDiscarded, "w4": domain.StateDead} {
			if r, err := p.store.GetRepair(context.Background(), id, false); err != nil || r.State != want {
				t.Errorf("%s is %s (%v), want %s", id, r.State, err, want)
			}
		}
	})
}

// TestABulkCallTakesFiveHundredAndSaysMoreAreLeft: one call lists and
// moves at most 500 writes and says whether the route has more in the
// state; the next call takes the rest.
func TestABulkCallTakesFiveHundredAndSaysMoreAreLeft(t *testing.T) {
	p := newPlane(t)
	ids := make([]string, bulkLimit+1)
	for i := range ids {
		ids[i] = fmt.Sprintf("w%03d", i)
	}
	for chunk := range slices.Chunk(ids, 100) { // deadWrites claims 100 at a time
		deadWrites(t, p.store, "put-item", chunk...)
	}
	resp, body := p.call(t, "POST", "/admin/repairs/discard", aliceToken, `{"route":"put-item","state":"dead","dry_run":true}`)
	if matched, _ := body["matched"].([]any); resp.StatusCode != 200 || len(matched) != bulkLimit || body["more"] != true {
		t.Fatalf("a dry run: %d, %d matched, more %v; want %d and more", resp.StatusCode, len(matched), body["more"], bulkLimit)
	}
	for _, want := range []struct {
		done float64
		more bool
	}{{bulkLimit, true}, {1, false}} {
		resp, body := p.call(t, "POST", "/admin/repairs/discard", aliceToken, `{"route":"put-item","state":"dead","reason":"retired"}`)
		if resp.StatusCode != 200 || body["done"] != want.done || body["more"] != want.more {
			t.Fatalf("got %d done %v more %v, want %v done, more %v", resp.StatusCode, body["done"], body["more"], want.done, want.more)
		}
	}
}

// movingRepairs is the store with other operators acting while a bulk
// call runs: once the call has listed its writes, moved is discarded by
// another call and gone is no longer journaled.
type movingRepairs struct {
	*store.Store
	moved, gone string
}

func (m movingRepairs) ListRepairs(ctx context.Context, f store.RepairFilter) ([]domain.RepairSummary, error) {
	list, err := m.Store.ListRepairs(ctx, f)
	if err == nil {
		err = m.Store.DiscardRepair(ctx, m.moved, domain.AuditEntry{At: time.Now(), Actor: "bob", Action: "repair_discard", Route: "put-item", Reason: "mine", Detail: m.moved})
	}
	return list, err
}

func (m movingRepairs) DiscardRepair(ctx context.Context, id string, audit domain.AuditEntry) error {
	if id == m.gone {
		return store.ErrNotFound
	}
	return m.Store.DiscardRepair(ctx, id, audit)
}

// TestABulkCallLeavesAWriteThatMovedMeanwhile: a write another operator
// acted on, or that was purged, after the call listed it is left as it
// is, named in the answer with why, and audited as denied; the others are
// moved, and the call answers 200.
func TestABulkCallLeavesAWriteThatMovedMeanwhile(t *testing.T) {
	p := newPlane(t)
	deadWrites(t, p.store, "put-item", "w1", "w2", "w3")
	p.admin.Repairs = movingRepairs{Store: p.store, moved: "w2", gone: "w3"}
	resp, body := p.call(t, "POST", "/admin/repairs/discard", aliceToken, `{"route":"put-item","state":"dead","reason":"retired"}`)
	refused, _ := body["refused"].([]any)
	if resp.StatusCode != 200 || body["done"] != 1.0 || len(refused) != 2 {
		t.Fatalf("got %d %v, want 200 with w1 done and w2, w3 refused", resp.StatusCode, body)
	}
	why := map[any]any{}
	for _, r := range refused {
		r, _ := r.(map[string]any)
		why[r["id"]] = r["why"]
	}
	if why["w2"] != "it is discarded, not pending, dead or unknown" || why["w3"] != "it is no longer journaled" {
		t.Errorf("refused %v, want w2 as discarded meanwhile and w3 as no longer journaled", refused)
	}
	denied := 0
	for _, a := range p.auditActions(t) {
		if a == "alice denied put-item" {
			denied++
		}
	}
	if denied != 2 {
		t.Errorf("%d denied audit entries, want 2: %v", denied, p.auditActions(t))
	}
}
