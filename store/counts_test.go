package store

import (
	"context"
	"reflect"
	"testing"
	"time"

	"strangler/domain"
)

func TestCounts(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.fresh(t)
		a, c := openStore(t, dsn, nil), openStore(t, dsn, nil)
		hour := t0.Truncate(time.Hour)
		lastHour := hour.Add(-time.Hour)
		fb1, fb2 := hour.Add(10*time.Minute), hour.Add(40*time.Minute)

		t.Run("counts add up across flushes and replicas", func(t *testing.T) {
			if err := a.AddCounts(ctx, []domain.HourCount{
				{Route: "get", Hour: hour.Add(15 * time.Minute), Requests: 10, Modern: 8, Fallbacks: 2, LastFallbackAt: fb2},
				{Route: "get", Hour: lastHour, Requests: 5, Modern: 5},
				{Route: "other", Hour: hour, Requests: 100},
			}); err != nil {
				t.Fatal(err)
			}
			if err := c.AddCounts(ctx, []domain.HourCount{
				{Route: "get", Hour: hour.Add(45 * time.Minute), Requests: 4, Modern: 3, Fallbacks: 1, ShadowMatches: 7, ShadowMismatches: 1, LastFallbackAt: fb1},
				{Route: "get", Hour: hour, Requests: 1},
			}); err != nil {
				t.Fatal(err)
			}
			got, err := a.Counts(ctx, "get", hour.Add(30*time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			want := CountTotals{Requests: 15, Modern: 11, Fallbacks: 3, ShadowMatches: 7, ShadowMismatches: 1, LastFallbackAt: fb2}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("this hour: got %+v, want %+v", got, want)
			}
			got, err = c.Counts(ctx, "get", lastHour)
			if err != nil {
				t.Fatal(err)
			}
			if got.Requests != 20 || got.Modern != 16 {
				t.Errorf("since last hour: got %+v, want 20 requests, 16 modern", got)
			}
		})

		t.Run("hourly counts come back hour by hour, oldest first", func(t *testing.T) {
			got, err := a.HourlyCounts(ctx, "get", lastHour)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || !got[0].Hour.Equal(lastHour) || !got[1].Hour.Equal(hour) {
				t.Fatalf("got %+v, want last hour then this hour", got)
			}
			if got[0].Requests != 5 || got[1].Requests != 15 || got[1].Fallbacks != 3 || !got[1].LastFallbackAt.Equal(fb2) {
				t.Errorf("got %+v and %+v", got[0], got[1])
			}
		})

		t.Run("a route with no counts adds up to zero", func(t *testing.T) {
			got, err := a.Counts(ctx, "none", lastHour)
			if err != nil {
				t.Fatal(err)
			}
			if got != (CountTotals{}) {
				t.Errorf("got %+v, want zero", got)
			}
		})

		t.Run("the clients still reaching legacy are ranked by requests", func(t *testing.T) {
			if err := a.AddLegacyClients(ctx, []domain.ClientCount{
				{Route: "get", Hour: hour, Client: "ios/3.1", Requests: 5},
				{Route: "get", Hour: hour, Client: "android/2.0", Requests: 7},
				{Route: "get", Hour: lastHour, Client: "ios/3.1", Requests: 4},
				{Route: "get", Hour: hour, Client: "web/1", Requests: 1},
				{Route: "other", Hour: hour, Client: "ios/3.1", Requests: 50},
			}); err != nil {
				t.Fatal(err)
			}
			if err := c.AddLegacyClients(ctx, []domain.ClientCount{{Route: "get", Hour: hour.Add(time.Minute), Client: "ios/3.1", Requests: 3}}); err != nil {
				t.Fatal(err)
			}
			got, err := a.TopLegacyClients(ctx, "get", lastHour, 2)
			if err != nil {
				t.Fatal(err)
			}
			want := []domain.ClientCount{{Route: "get", Client: "ios/3.1", Requests: 12}, {Route: "get", Client: "android/2.0", Requests: 7}}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %+v, want %+v", got, want)
			}
			got, err = a.TopLegacyClients(ctx, "get", hour, 5)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 3 || got[0].Client != "ios/3.1" || got[0].Requests != 8 {
				t.Errorf("this hour: got %+v, want ios/3.1 with 8 first of 3", got)
			}
		})

		t.Run("purging drops hours before the cutoff", func(t *testing.T) {
			n, err := a.PurgeCounts(ctx, hour)
			if err != nil {
				t.Fatal(err)
			}
			if n != 2 { // get's last hour, and its ios/3.1 clients
				t.Errorf("purged %d rows, want 2", n)
			}
			got, err := a.Counts(ctx, "get", lastHour)
			if err != nil {
				t.Fatal(err)
			}
			if got.Requests != 15 {
				t.Errorf("got %d requests, want 15 left", got.Requests)
			}
		})
	})
}
