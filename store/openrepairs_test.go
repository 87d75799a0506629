package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"strangler/domain"
)

// TestOpenRepairsCountsEachRouteByPrimaryAndState: what the status page
// shows as owed, route by route, and what OpenPrimaries (the check that no
// flip overtakes a journaled write) sums: open writes only, by state.
func TestOpenRepairsCountsEachRouteByPrimaryAndState(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := newStore(t, b, nil)
		ctx := context.Background()
		journal(t, s, "w1", "patients/1")
		journal(t, s, "w2", "patients/2")
		other := intent("w3", "items/1")
		other.Route, other.Primary = "put-item", domain.Modern
		if err := s.BeginWrite(ctx, other, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.BeginWrite(ctx, intent("w4", "patients/4"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordOutcome(ctx, "w4", domain.Outcome{Status: 500}); err != nil { // skipped: owed nowhere
			t.Fatal(err)
		}
		got, err := s.OpenRepairs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []OpenCount{
			{Route: "put-item", Primary: domain.Modern, State: domain.StateSent, N: 1},
			{Route: "update-patient", Primary: domain.Legacy, State: domain.StatePending, N: 2},
		}
		if !slices.Equal(got, want) {
			t.Errorf("OpenRepairs = %+v, want %+v", got, want)
		}
		primaries, err := s.OpenPrimaries(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if primaries["update-patient"][domain.Legacy] != 2 || primaries["put-item"][domain.Modern] != 1 || len(primaries) != 2 {
			t.Errorf("OpenPrimaries = %v", primaries)
		}
	})
}
