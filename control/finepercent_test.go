package control

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"strangler/domain"
)

// TestAShareStoredFinerThanASlotReadsAsServed: an override an older
// release stored at 99.996% sends every request to modern (the router
// splits traffic in 0.01% slots), and 0.004% sends none. Such a share is
// read as served: the admin API (and so routes list and the status page)
// shows 100 and 0, not the figure as written, and a flip to 100% of the
// first is the no-op it is, not a move forward past the gates.
func TestAShareStoredFinerThanASlotReadsAsServed(t *testing.T) {
	p := newPlane(t)
	ctx := context.Background()
	for route, pct := range map[string]float64{"get-patient": 99.996, "create-patient": 0.004} {
		mode := domain.ModeFallback
		if route == "create-patient" {
			mode = domain.ModeModern
		}
		if _, err := p.store.SetOverride(ctx, domain.Override{Route: route, Mode: mode, Percent: &pct, Actor: "alice", Reason: "an older release"}, 0,
			domain.AuditEntry{Actor: "alice", Action: "flip", Route: route, Reason: "an older release"}); err != nil {
			t.Fatal(err)
		}
	}
	p.flags.resync(ctx)
	for route, want := range map[string]float64{"get-patient": 100, "create-patient": 0} {
		_, body := p.call(t, "GET", "/admin/routes/"+route, aliceToken, "")
		if got, _ := body["percent"].(float64); got != want {
			t.Errorf("%s shows percent %v, want %v as served", route, body["percent"], want)
		}
	}
	before := len(p.auditActions(t))
	resp, body := p.call(t, "PATCH", "/admin/routes/get-patient", aliceToken, `{"percent":100,"reason":"all of it"}`, "If-Match", `"1"`)
	if resp.StatusCode != 200 || body["unchanged"] != true || len(p.auditActions(t)) != before {
		t.Errorf("a flip of 99.996%% (served as 100%%) to 100%%: got %d %v, want 200 unchanged, nothing audited", resp.StatusCode, body)
	}
}

// TestAShareInAnOlderSnapshotReadsAsServed: a state snapshot an older
// release wrote may hold a share finer than a slot; a replica started
// from it, the store down, shows and compares the share it serves.
func TestAShareInAnOlderSnapshotReadsAsServed(t *testing.T) {
	snap := NewSnapshot(filepath.Join(t.TempDir(), "flags.json"), "sqlite")
	pct := 99.996
	if err := snap.Save(map[string]domain.Override{"get-patient": {Route: "get-patient", Mode: domain.ModeFallback, Percent: &pct, Version: 3}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	got, _, err := snap.Load()
	if err != nil {
		t.Fatal(err)
	}
	if p := got["get-patient"].Percent; p == nil || *p != 100 {
		t.Errorf("the snapshot's 99.996%% reads as %v, want 100 as served", p)
	}
}
