package store

import (
	"context"
	"testing"
	"time"
)

func TestReleaseLeasesKeepsDeliveriesUnderWayAndOthersLeases(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)
		for _, id := range []string{"kept", "lost-1", "lost-2", "theirs"} {
			journal(t, s, id, "/patients/"+id)
		}
		for _, c := range []struct{ id, owner string }{{"kept", "w"}, {"lost-1", "w"}, {"lost-2", "w"}, {"theirs", "v"}} {
			if _, ok, err := s.ClaimRepair(ctx, c.id, c.owner, time.Minute); err != nil || !ok {
				t.Fatalf("claim %s: %v %v", c.id, ok, err)
			}
		}
		n, err := s.ReleaseLeases(ctx, "w", map[string]bool{"kept": true})
		if err != nil || n != 2 {
			t.Fatalf("got %d released, %v; want 2", n, err)
		}
		for id, owner := range map[string]string{"kept": "w", "lost-1": "", "lost-2": "", "theirs": "v"} {
			r, err := s.GetRepair(ctx, id, false)
			if err != nil {
				t.Fatal(err)
			}
			if r.LeaseOwner != owner {
				t.Errorf("%s: leased to %q, want %q", id, r.LeaseOwner, owner)
			}
		}
		if got := claimIDs(t, s, "x"); len(got) != 2 {
			t.Errorf("claimable after the release: %v, want lost-1 and lost-2", got)
		}
	})
}
