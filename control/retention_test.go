package control

import (
	"context"
	"strings"
	"testing"
	"time"

	"strangler/config"
	"strangler/domain"
	"strangler/store"
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
	// The README's figure, written out: 90 days.
	if got, want := CountsRetention(routes), 90*24*time.Hour; got != want {
		t.Errorf("retention of the default routes %s, want the README's 90 days, %s", got, want)
	}
	long := *routes[0].Route // a copy: the plane's routes stay as they are
	long.RetireAfter = config.Duration(200 * 24 * time.Hour)
	routes[0].Route = &long
	if got, want := CountsRetention(routes), 201*24*time.Hour; got != want {
		t.Errorf("retention with a 200-day retire_after %s, want %s", got, want)
	}
}

// TestOnlyTheLeadingReplicaPurgesCounts runs two replicas on one
// PostgreSQL schema and one clock: only the one holding the lease of the
// once-per-cluster work (the ramp driver's) purges old counts, once an
// hour; when it stops, the other takes the lease and the purge over.
func TestOnlyTheLeadingReplicaPurgesCounts(t *testing.T) {
	a, b, c := twoReplicas(t)
	ctx := context.Background()
	add := func(at time.Time) {
		t.Helper()
		if err := a.store.AddCounts(ctx, []domain.HourCount{{Route: "get-patient", Hour: at, Requests: 10}}); err != nil {
			t.Fatal(err)
		}
	}
	left := func(since time.Time) int {
		t.Helper()
		hours, err := a.store.HourlyCounts(ctx, "get-patient", since.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return len(hours)
	}
	pa := &CountsPurger{Flags: a.flags, Store: a.store, Lead: a.rollouts, Log: a.log, Now: c.Now}
	pb := &CountsPurger{Flags: b.flags, Store: b.store, Lead: b.rollouts, Log: b.log, Now: c.Now}
	a.rollouts.Check(ctx)
	b.rollouts.Check(ctx)
	if !a.rollouts.Leading() || b.rollouts.Leading() {
		t.Fatalf("leading: a %v, b %v; want a alone", a.rollouts.Leading(), b.rollouts.Leading())
	}

	first := c.Now().Truncate(time.Hour).Add(-CountsRetention(a.flags.All()) - 2*time.Hour)
	add(first)
	var lastA, lastB time.Time
	if lastB = pb.purgeIfDue(ctx, lastB); left(first) != 1 {
		t.Fatal("b, which does not lead, purged the old counts")
	}
	if lastA = pa.purgeIfDue(ctx, lastA); left(first) != 0 {
		t.Fatal("a, which leads, left the old counts")
	}
	second := first.Add(-time.Hour)
	add(second)
	c.Advance(purgeEvery - time.Minute)
	a.rollouts.Check(ctx)
	if lastA = pa.purgeIfDue(ctx, lastA); left(second) != 1 {
		t.Fatal("a purged again within the hour")
	}
	c.Advance(time.Minute)
	a.rollouts.Check(ctx)
	if lastA = pa.purgeIfDue(ctx, lastA); left(second) != 0 {
		t.Fatal("a did not purge an hour after its last purge")
	}

	// a stops, giving the lease up; b takes it at its next try, and the
	// purge with it.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- a.rollouts.Run(runCtx) }()
	stop()
	<-done
	third := second.Add(-time.Hour)
	add(third)
	c.Advance(leaseRenew)
	b.rollouts.Check(ctx)
	pa.purgeIfDue(ctx, lastA)
	if left(third) != 1 {
		t.Fatal("a purged after it gave the lease up")
	}
	pb.purgeIfDue(ctx, lastB)
	if left(third) != 0 {
		t.Fatal("b did not purge once it took the lease over")
	}
}

// TestWhatRemovedRoutesLeftIsPurged: the learned schemas and mismatch
// samples of a route no longer in the configuration are deleted,
// audited, once no replica has added to them for leftoverGrace; those of
// the routes served stay.
func TestWhatRemovedRoutesLeftIsPurged(t *testing.T) {
	h := newPlaneWith(t, planeOptions{})
	ctx := context.Background()
	for _, route := range []string{"get-patient", "old-route"} {
		for _, status := range []int{200, 404} {
			if err := h.store.MergeSchema(ctx, route, "GET", status, func([]byte) ([]byte, error) { return []byte(`{}`), nil }); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.store.AddSample(ctx, route, time.Now(), []byte(`{"diffs":[]}`), 100); err != nil {
			t.Fatal(err)
		}
	}
	// The store stamps schemas with the wall clock.
	var now time.Time
	p := &CountsPurger{Flags: h.flags, Store: h.store, Leftovers: h.store, Log: h.log, Now: func() time.Time { return now }}
	left := func(route string) (int, int) {
		t.Helper()
		docs, err := h.store.LoadSchemas(ctx, route)
		if err != nil {
			t.Fatal(err)
		}
		samples, err := h.store.Samples(ctx, route, 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(docs), len(samples)
	}
	now = time.Now().Add(leftoverGrace - time.Minute)
	if err := p.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if schemas, samples := left("old-route"); schemas != 2 || samples != 1 {
		t.Fatalf("the removed route's schemas or samples were deleted within %s of the last write", leftoverGrace)
	}
	now = time.Now().Add(leftoverGrace + time.Minute)
	if err := p.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if schemas, samples := left("old-route"); schemas != 0 || samples != 0 {
		t.Errorf("%d schemas and %d samples of the removed route left, want none", schemas, samples)
	}
	if schemas, samples := left("get-patient"); schemas != 2 || samples != 1 {
		t.Errorf("%d schemas and %d samples of a route served left, want 2 and 1", schemas, samples)
	}
	entries, err := h.store.AuditLog(ctx, store.AuditFilter{Route: "old-route"})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Actor != config.ConfigActor || entries[0].Action != "route_data_purged" ||
		!strings.Contains(entries[0].Detail, "2 learned response schemas, 1 shadow mismatch samples and 0 learned noise fields") {
		t.Errorf("audit of the purge: %+v, want one route_data_purged entry by config naming 2 schemas and 1 sample", entries)
	}
}
