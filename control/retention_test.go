package control

import (
	"context"
	"testing"
	"time"

	"strangler/config"
	"strangler/domain"
)

// TestOldCountsArePurgedAndTheRetirementWindowKept checks that counts
// older than every route's needs leave the store, that hours a route's
// retire_after still counts stay.
func TestOldCountsArePurgedAndTheRetirementWindowKept(t *testing.T) {
	h := newPlaneWith(t, planeOptions{})
	ctx := context.Background()
	now := h.clock.Now().Truncate(time.Hour)
	longest := CountsRetention(h.flags.All())
	if longest < countsFloor {
		t.Fatalf("retention %s is under the floor %s", longest, countsFloor)
	}
	kept := now.Add(-longest + 2*time.Hour)
	gone := now.Add(-longest - 2*time.Hour)
	add := func(at time.Time) {
		t.Helper()
		if err := h.store.AddCounts(ctx, []domain.HourCount{{Route: "get-patient", Hour: at, Requests: 10, Fallbacks: 1, LastFallbackAt: at}}); err != nil {
			t.Fatal(err)
		}
		if err := h.store.AddLegacyClients(ctx, []domain.ClientCount{{Route: "get-patient", Hour: at, Client: "ios/2.1", Requests: 10}}); err != nil {
			t.Fatal(err)
		}
	}
	add(kept)
	add(gone)
	p := &CountsPurger{Flags: h.flags, Store: h.store, Log: h.log, Now: h.clock.Now}
	if err := p.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	hours, err := h.store.HourlyCounts(ctx, "get-patient", gone.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(hours) != 1 || !hours[0].Hour.Equal(kept) {
		t.Errorf("hours left %+v, want only %s", hours, kept)
	}
	clients, err := h.store.TopLegacyClients(ctx, "get-patient", gone.Add(-time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(clients) != 1 || clients[0].Requests != 10 {
		t.Errorf("client counts left %+v, want the kept hour's 10 requests only", clients)
	}

	// An hour on, the hour kept before has not yet expired; a new one
	// from before the retention has.
	add(gone)
	h.clock.Advance(purgeEvery)
	if err := p.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if hours, _ := h.store.HourlyCounts(ctx, "get-patient", gone.Add(-time.Hour)); len(hours) != 1 {
		t.Errorf("an hour later %d hours are left, want 1", len(hours))
	}
}

func TestCountsRetentionCoversTheLongestRetirementWindow(t *testing.T) {
	h := newPlaneWith(t, planeOptions{})
	routes := h.flags.All()
	if got := CountsRetention(routes); got != countsFloor {
		t.Errorf("retention of the default routes %s, want the floor %s", got, countsFloor)
	}
	long := *routes[0].Route // a copy: the plane's routes stay as they are
	long.RetireAfter = config.Duration(200 * 24 * time.Hour)
	routes[0].Route = &long
	if got, want := CountsRetention(routes), 201*24*time.Hour; got != want {
		t.Errorf("retention with a 200-day retire_after %s, want %s", got, want)
	}
}
