package store

import (
	"context"
	"testing"
	"time"

	"strangler/domain"
)

func TestConfirmedMissingAddsUpApartFromFallbacks(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.fresh(t)
		a, c := openStore(t, dsn, nil), openStore(t, dsn, nil)
		hour := t0.Truncate(time.Hour)
		if err := a.AddCounts(ctx, []domain.HourCount{{Route: "get", Hour: hour, Requests: 10, Modern: 6, Fallbacks: 1, ConfirmedMissing: 3}}); err != nil {
			t.Fatal(err)
		}
		if err := c.AddCounts(ctx, []domain.HourCount{
			{Route: "get", Hour: hour.Add(time.Minute), Requests: 4, ConfirmedMissing: 4},
			{Route: "get", Hour: hour.Add(-time.Hour), Requests: 2, ConfirmedMissing: 2},
		}); err != nil {
			t.Fatal(err)
		}
		got, err := a.Counts(ctx, "get", hour)
		if err != nil {
			t.Fatal(err)
		}
		if got.Fallbacks != 1 || got.ConfirmedMissing != 7 {
			t.Errorf("this hour: got %d fallbacks and %d confirmed missing, want 1 and 7", got.Fallbacks, got.ConfirmedMissing)
		}
		hours, err := c.HourlyCounts(ctx, "get", hour.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if len(hours) != 2 || hours[0].ConfirmedMissing != 2 || hours[1].ConfirmedMissing != 7 || hours[1].Fallbacks != 1 {
			t.Errorf("hourly: got %+v, want 2 then 7 confirmed missing", hours)
		}
	})
}
