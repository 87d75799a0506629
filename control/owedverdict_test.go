package control

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/domain"
)

// owedRoutes are two write routes: put-item writes to modern first,
// post-item to legacy first.
const owedRoutes = `
routes:
  - {name: put-item, match: "PUT /items/{id}", mode: dual-write, primary: modern, retire_after: 7d, retire_min_requests: 100}
  - {name: post-item, match: "POST /items", mode: dual-write, retire_after: 7d, retire_min_requests: 100}
`

// oweWrite journals a write of route under primary that the primary
// applied: it is owed to the other backend until delivered or discarded.
func (p *plane) oweWrite(t *testing.T, id, route string, primary domain.Backend) {
	t.Helper()
	ctx := context.Background()
	w := domain.Intent{ID: id, Route: route, Resource: "items/" + id, Method: http.MethodPut, Target: "/items/" + id,
		Header: http.Header{}, Body: []byte(`{}`), Primary: primary}
	if err := p.store.BeginWrite(ctx, w, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := p.store.RecordOutcome(ctx, id, domain.Outcome{Status: 200}); err != nil {
		t.Fatal(err)
	}
}

// TestTheVerdictWaitsForTheWritesARouteStillOwes: a route modern has
// served alone for 8 days was called retirable while the journal still
// owed legacy writes of it, so legacy could be retired with them
// undelivered. The verdict now says how many are owed and to whom, the
// report carries the number, and retiring is blocked until they are
// delivered or discarded; a route whose next flip would send writes
// straight to the backend they are owed to has that flip blocked too, as
// the flip itself is refused.
func TestTheVerdictWaitsForTheWritesARouteStillOwes(t *testing.T) {
	p := newPlaneWith(t, planeOptions{routes: owedRoutes})
	ctx := context.Background()
	p.flip(t, "put-item", domain.ModeModern, nil)
	r := p.counters.Route("put-item")
	req := &http.Request{Header: http.Header{}}
	for _, n := range []int{150, 120} {
		for range n {
			r.Request(p.clock.Now(), "modern", req)
		}
		if err := p.counters.Flush(ctx, p.store, p.clock.Now()); err != nil {
			t.Fatal(err)
		}
		p.clock.Advance(8 * 24 * time.Hour)
	}
	p.clock.Advance(-8 * 24 * time.Hour)
	report := func(route string) RouteReport {
		t.Helper()
		rf, _ := p.flags.Get(route)
		rep, err := p.reports.Route(ctx, rf, p.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := report("put-item"); !rep.Retirable || rep.OwedWrites != 0 {
		t.Fatalf("with nothing owed: retirable %v (%q), %d owed; want retirable", rep.Retirable, rep.Verdict, rep.OwedWrites)
	}

	p.oweWrite(t, "w1", "put-item", domain.Modern)
	p.oweWrite(t, "w2", "put-item", domain.Modern)
	rep := report("put-item")
	if want := "not yet: 2 dual writes still owed to legacy (strangler repairs list --route put-item; deliver or discard them)"; rep.Retirable || rep.Verdict != want {
		t.Errorf("with 2 writes owed to legacy: retirable %v, %q; want %q", rep.Retirable, rep.Verdict, want)
	}
	if rep.OwedWrites != 2 || rep.OwedTo["legacy"] != 2 || len(rep.OwedTo) != 1 {
		t.Errorf("owed_writes %d, owed_to %v; want 2, all to legacy", rep.OwedWrites, rep.OwedTo)
	}
	if !rep.Next.Retire || !slices.ContainsFunc(rep.Next.Blockers, func(b string) bool { return strings.HasPrefix(b, "2 dual writes still owed to legacy") }) {
		t.Errorf("next %+v; want retiring blocked by the 2 writes owed", rep.Next)
	}
	if js, _ := json.Marshal(rep); !strings.Contains(string(js), `"owed_writes":2,"owed_to":{"legacy":2}`) {
		t.Errorf("the report's JSON carries no owed_writes: %s", js)
	}
	if want := "not before they are delivered or discarded: 2 dual writes still owed to legacy"; rep.Outlook.RetirableAt != nil || rep.Outlook.Summary != want {
		t.Errorf("outlook %q, retirable at %v; want %q", rep.Outlook.Summary, rep.Outlook.RetirableAt, want)
	}

	for _, id := range []string{"w1", "w2"} {
		if err := p.store.DiscardRepair(ctx, id, domain.AuditEntry{At: p.clock.Now(), Actor: "alice", Action: "repair_discard", Route: "put-item", Reason: "test", Detail: id}); err != nil {
			t.Fatal(err)
		}
	}
	if rep := report("put-item"); !rep.Retirable || rep.OwedWrites != 0 || len(rep.Next.Blockers) != 0 {
		t.Errorf("once they are discarded: retirable %v (%q), %d owed, blockers %q; want retirable", rep.Retirable, rep.Verdict, rep.OwedWrites, rep.Next.Blockers)
	}

	t.Run("a flip that the journal refuses is blocked", func(t *testing.T) {
		p.oweWrite(t, "w3", "post-item", domain.Legacy)
		rep := report("post-item")
		want := "1 dual write still owed to modern: the flip would send writes straight to modern ahead of them, and is refused until they are delivered or discarded (strangler repairs list --route post-item)"
		if rep.Next.Mode != "modern" || !slices.Contains(rep.Next.Blockers, want) {
			t.Errorf("next %+v; want modern, blocked by %q", rep.Next, want)
		}
		modern := domain.ModeModern
		if _, err := p.flags.Apply(ctx, Flip{Route: "post-item", Actor: "alice", Reason: "test", Mode: &modern, Force: true}); err == nil {
			t.Errorf("the flip the report calls blocked went through")
		}
	})
}
