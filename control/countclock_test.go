package control

import (
	"context"
	"strings"
	"testing"
	"time"

	"strangler/domain"
	"strangler/store"
)

// skewedStore is the state store as a replica whose clock is off reads
// it: the store's clock is off ahead of the replica's (store.ClockOffset
// measures it against PostgreSQL's; store/countclock_test.go checks that).
type skewedStore struct {
	*store.Store
	off time.Duration
}

func (s skewedStore) ClockOffset(context.Context) (time.Duration, error) { return s.off, nil }

// TestTheReportAndTheGatesReadTheStoresHoursWhateverTheReplicasClock:
// counts are filed under the store's hours. A replica whose clock is two
// days ahead must still count a fallback five days ago in a 7-day
// retirement window (else it calls the route retirable while a replica
// on time does not), and one two hours ahead must still see this hour's
// fallbacks at the gates (else a flip passes a fallback-rate gate the
// route fails).
func TestTheReportAndTheGatesReadTheStoresHoursWhateverTheReplicasClock(t *testing.T) {
	ctx := context.Background()
	setUp := func(t *testing.T, counts ...domain.HourCount) (*plane, RouteFlags) {
		p := newPlane(t)
		for _, hc := range counts {
			hc.Route = "get-patient"
			if err := p.store.AddCounts(ctx, []domain.HourCount{hc}); err != nil {
				t.Fatal(err)
			}
		}
		rf, _ := p.flags.Get("get-patient")
		return p, rf
	}
	t.Run("the retirement verdict", func(t *testing.T) {
		now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		sixDaysAgo := now.Add(-6 * 24 * time.Hour)
		p, rf := setUp(t,
			domain.HourCount{Hour: now.Add(-8 * 24 * time.Hour), Requests: 50, Modern: 50},
			domain.HourCount{Hour: sixDaysAgo, Requests: 1, Fallbacks: 1, LastFallbackAt: sixDaysAgo},
			domain.HourCount{Hour: now.Add(-time.Hour), Requests: 200, Modern: 200})
		if !p.clock.Now().Equal(now) {
			t.Fatalf("the plane's clock reads %s, want %s", p.clock.Now(), now)
		}
		ahead := &Reports{Counts: skewedStore{p.store, -2 * 24 * time.Hour}}
		rep, err := ahead.Route(ctx, rf, now.Add(2*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Retirable || !strings.Contains(rep.Verdict, "1 fallbacks") {
			t.Errorf("a replica two days ahead says %q, want the fallback 6 days ago to hold the route", rep.Verdict)
		}
	})
	t.Run("the gates", func(t *testing.T) {
		now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
		p, _ := setUp(t, domain.HourCount{Hour: now, Requests: 200, Modern: 190, Fallbacks: 10, LastFallbackAt: now})
		ahead := &Reports{Counts: skewedStore{p.store, -2 * time.Hour}}
		_, fallback, err := ahead.RecentRates(ctx, "get-patient", now.Add(2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if fallback != (domain.Share{N: 10, Of: 200}) {
			t.Errorf("a replica two hours ahead reads a fallback rate of %v at the gates, want this hour's 10 of 200", fallback)
		}
	})
}

// TestALeaderAheadKeepsTheHoursAWindowReads: the replica that purges
// counts past their retention (90 days here) has a clock three days
// ahead: the hour 89 days ago on the store's clock, which the 90-day
// retention keeps, stays.
func TestALeaderAheadKeepsTheHoursAWindowReads(t *testing.T) {
	ctx := context.Background()
	p := newPlane(t)
	kept := p.clock.Now().Truncate(time.Hour).Add(-89 * 24 * time.Hour)
	if err := p.store.AddCounts(ctx, []domain.HourCount{{Route: "get-patient", Hour: kept, Requests: 10, Modern: 10}}); err != nil {
		t.Fatal(err)
	}
	ahead := func() time.Time { return p.clock.Now().Add(3 * 24 * time.Hour) }
	purger := &CountsPurger{Flags: p.flags, Store: skewedStore{p.store, -3 * 24 * time.Hour}, Log: p.log, Now: ahead}
	if err := purger.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	hours, err := p.store.HourlyCounts(ctx, "get-patient", kept.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(hours) != 1 {
		t.Errorf("the hour 89 days ago is gone (%d hours left): a leader 3 days ahead purged within the retention", len(hours))
	}
}

// TestALeaderAheadKeepsWhatARouteLearnedAMomentAgo: the replica that
// purges what removed routes left behind has a clock two hours ahead. A
// replica still serving the older configuration learned a schema and a
// sample a moment ago, on the store's clock: they stay (the grace is an
// hour), as they did not when the leader measured the grace by its own.
func TestALeaderAheadKeepsWhatARouteLearnedAMomentAgo(t *testing.T) {
	ctx := context.Background()
	p := newPlane(t)
	if err := p.store.MergeSchema(ctx, "old-route", "GET", 200, func([]byte) ([]byte, error) { return []byte(`{}`), nil }); err != nil {
		t.Fatal(err)
	}
	if err := p.store.AddSample(ctx, "old-route", time.Now(), []byte(`{"diffs":[]}`), 100); err != nil {
		t.Fatal(err)
	}
	ahead := func() time.Time { return time.Now().Add(2 * time.Hour) } // the store stamps with the wall clock
	purger := &CountsPurger{Flags: p.flags, Store: skewedStore{p.store, -2 * time.Hour}, Leftovers: p.store, Log: p.log, Now: ahead}
	if err := purger.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	docs, err := p.store.LoadSchemas(ctx, "old-route")
	if err != nil {
		t.Fatal(err)
	}
	samples, err := p.store.Samples(ctx, "old-route", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 || len(samples) != 1 {
		t.Errorf("%d schemas and %d samples learned a moment ago left, want 1 and 1: a leader 2 hours ahead deleted them", len(docs), len(samples))
	}
}
