package store

import (
	"context"
	"strings"
	"testing"

	"strangler/domain"
)

// TestTheLastFlagChangeIsFoundPastAnyOtherEntries: the guard reads the
// latest change of a route's flags (to step a ramp back to its previous
// percent). It looked among the route's latest 50 entries, where a
// viewer's refused flips, each audited, pushed it out of sight. Found by
// route and kind, through a partial index of just the changes, it is
// found however many others came after it, and the look costs the same.
func TestTheLastFlagChangeIsFoundPastAnyOtherEntries(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := openStore(t, b.fresh(t), nil)
		if _, ok, err := s.LastFlagChange(ctx, "get-patient"); err != nil || ok {
			t.Fatalf("a route never changed: got %v, %v; want none", ok, err)
		}
		var version int64
		for _, p := range []float64{5, 25} {
			o, err := s.SetOverride(ctx, domain.Override{Route: "get-patient", Mode: "fallback", Percent: pct(p), Actor: "alice", Reason: "ramp"}, version,
				domain.AuditEntry{Actor: "alice", Action: "flip", Route: "get-patient", FromMode: "fallback", ToMode: "fallback", ToPercent: pct(p), Reason: "ramp"})
			if err != nil {
				t.Fatal(err)
			}
			version = o.Version
		}
		if err := s.AppendAudit(ctx, domain.AuditEntry{Actor: "bob", Action: "flip", Route: "other-route"}); err != nil {
			t.Fatal(err)
		}
		for range 120 {
			if err := s.AppendAudit(ctx, domain.AuditEntry{Actor: "vera", Action: "denied", Route: "get-patient", Detail: "PATCH refused (403)"}); err != nil {
				t.Fatal(err)
			}
		}
		e, ok, err := s.LastFlagChange(ctx, "get-patient")
		if err != nil || !ok {
			t.Fatalf("got %v, %v; want alice's flip", ok, err)
		}
		if e.Action != "flip" || e.Actor != "alice" || e.ToPercent == nil || *e.ToPercent != 25 {
			t.Errorf("got %s by %s to %v, want alice's flip to 25%%", e.Action, e.Actor, e.ToPercent)
		}

		q := `SELECT id FROM strangler_audit WHERE route = 'get-patient' AND ` + flagChangeActions + ` ORDER BY id DESC LIMIT 1`
		explain := `EXPLAIN QUERY PLAN ` + q
		conn, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if b.name == "postgres" {
			// Few rows: without this the planner may rightly read the table.
			if _, err := conn.ExecContext(ctx, `SET enable_seqscan = off`); err != nil {
				t.Fatal(err)
			}
			explain = `EXPLAIN ` + q
		}
		rows, err := conn.QueryContext(ctx, explain)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		var plan []string
		for rows.Next() {
			cells := make([]any, len(cols))
			for i := range cells {
				cells[i] = new(any)
			}
			if err := rows.Scan(cells...); err != nil {
				t.Fatal(err)
			}
			for _, c := range cells {
				if s, ok := (*c.(*any)).(string); ok {
					plan = append(plan, s)
				}
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.Join(plan, "\n"), "strangler_audit_route_changes") {
			t.Errorf("the look does not read the index of changes:\n%s", strings.Join(plan, "\n"))
		}
	})
}
