package control

import (
	"context"
	"net/http"
	"testing"

	"strangler/domain"
	"strangler/internal/testdb"
	"strangler/store"
)

// TestAViewersRefusalsDoNotChangeWhatTheGuardDoes: a route ramped from
// fallback 5% to 25% that trips its guard steps back to 5%, found in the
// audit log. The guard looked for the ramp's step among the route's
// latest 50 entries; a viewer (a read-only token) who sent 60 flips,
// each refused and audited, pushed it out of them, and the guard stepped
// the route back a whole mode, to legacy. It now finds the route's
// latest change however many entries came after it.
func TestAViewersRefusalsDoNotChangeWhatTheGuardDoes(t *testing.T) {
	for _, tc := range []struct{ name, dsn string }{{"sqlite", ""}, {"postgres", testdb.Postgres(t)}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlaneWith(t, planeOptions{dsn: tc.dsn})
			guard := NewGuard(p.flags, p.counters, p.store, p.reg, p.log, p.clock.Now)
			p.flip(t, "get-patient", domain.ModeFallback, pct(5))
			p.flip(t, "get-patient", domain.ModeFallback, pct(25))
			const refused = 60
			for range refused {
				if resp, body := p.patch(t, "get-patient", veraToken, `{"mode": "legacy", "reason": "just looking"}`); resp.StatusCode != http.StatusForbidden {
					t.Fatalf("vera's flip: got %d %v, want 403", resp.StatusCode, body)
				}
			}
			entries, err := p.store.AuditLog(context.Background(), store.AuditFilter{Route: "get-patient", Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			denied := 0
			for _, e := range entries {
				if e.Action == "denied" && e.Actor == "vera" {
					denied++
				}
			}
			if denied != refused {
				t.Fatalf("the audit log holds %d of vera's refusals, want %d", denied, refused)
			}
			p.modernFails("get-patient", 25)
			guard.Check(context.Background())
			if got := p.served("get-patient"); got != "fallback 5%" {
				t.Errorf("the guard took the route to %s, want fallback 5%% (the ramp's previous step)", got)
			}
		})
	}
}
