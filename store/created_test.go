package store

import (
	"context"
	"net/http"
	"testing"
	"time"

	"strangler/domain"
)

// TestACreateMovesToTheResourceItMade journals a POST to a collection
// whose answer names the new resource: a later PUT of that resource must
// wait behind the create, and creates must not wait behind one another.
func TestACreateMovesToTheResourceItMade(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)
		lease := time.Minute
		create := func(id string) domain.Intent {
			in := intent(id, "/patients")
			in.Method, in.StandsFor, in.Target = http.MethodPost, http.MethodPost, "/patients"
			return in
		}
		for _, in := range []domain.Intent{create("c1"), create("c2"), intent("u1", "/patients/42")} {
			if err := s.BeginWrite(ctx, in, lease); err != nil {
				t.Fatal(err)
			}
		}
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}
		must(s.RecordOutcome(ctx, "c1", domain.Outcome{Status: 201, Location: "/patients/42", Resource: "/patients/42"}))
		must(s.RecordOutcome(ctx, "c2", domain.Outcome{Status: 201, Resource: "/patients#c2"}))
		must(s.RecordOutcome(ctx, "u1", domain.Outcome{Status: 200}))

		claimed, err := s.ClaimRepairs(ctx, "w", 10, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, r := range claimed {
			got[r.ID] = true
		}
		if !got["c1"] || !got["c2"] || got["u1"] {
			t.Fatalf("claimed %v, want both creates and not the PUT behind the first", got)
		}
		must(s.CompleteRepair(ctx, "c1", "w"))
		next, err := s.ClaimRepairs(ctx, "w2", 10, time.Minute)
		if err != nil || len(next) != 1 || next[0].ID != "u1" || next[0].ResourceKey != s.resourceKey("/patients/42") {
			t.Errorf("after the create, claimed %v, %v; want the PUT of /patients/42", next, err)
		}
	})
}
