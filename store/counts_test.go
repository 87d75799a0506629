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
			want := CountTotals{Requests: 15, Modern: 11, Fallbacks: 3, ShadowMatches: 7, ShadowMismatches: 1, LastFallbackAt: fb2, FirstHour: lastHour}
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

		t.Run("legacy's own answers, and hours counted before they were kept apart", func(t *testing.T) {
			day := hour.Add(-24 * time.Hour)
			// An hour flushed by a release that did not count legacy's own
			// answers: 10 requests, 6 modern, 1 fallback, 1 confirmed missing.
			if _, err := a.db.ExecContext(ctx, `
				INSERT INTO strangler_route_hours (route, hour, requests, modern, fallbacks, shadow_matches, shadow_mismatches, confirmed_missing)
				VALUES ('split', $1, 10, 6, 1, 0, 0, 1)`, a.ts(day)); err != nil {
				t.Fatal(err)
			}
			// The same hour, flushed by this release: still unknown, so
			// the 3 legacy answers it adds count once, among the 5.
			if err := c.AddCounts(ctx, []domain.HourCount{
				{Route: "split", Hour: day, Requests: 5, Modern: 2, Legacy: 3},
				{Route: "split", Hour: hour, Requests: 9, Modern: 5, ModernFailed: 2, Legacy: 4},
				{Route: "split", Hour: lastHour, Requests: 8, Modern: 8},
			}); err != nil {
				t.Fatal(err)
			}
			got, err := a.Counts(ctx, "split", day)
			if err != nil {
				t.Fatal(err)
			}
			if got.Legacy != 5+4 || !got.LastLegacyHour.Equal(hour) || !got.FirstHour.Equal(day) {
				t.Errorf("since a day ago: %d legacy, last %v, first hour %v; want 9, %v, %v", got.Legacy, got.LastLegacyHour, got.FirstHour, hour, day)
			}
			got, err = a.Counts(ctx, "split", lastHour)
			if err != nil {
				t.Fatal(err)
			}
			if got.Legacy != 4 || !got.FirstHour.Equal(day) || got.ModernFailed != 2 || got.ModernServed() != 11 {
				t.Errorf("since last hour: %d legacy, first hour %v, %d of modern's %d failed; want 4, the route's first hour %v whatever the period, 2 of 13",
					got.Legacy, got.FirstHour, got.ModernFailed, got.Modern, day)
			}
			hours, err := a.HourlyCounts(ctx, "split", day)
			if err != nil {
				t.Fatal(err)
			}
			if len(hours) != 3 || hours[0].Legacy != 5 || hours[1].Legacy != 0 || hours[2].Legacy != 4 {
				t.Errorf("hours %+v, want 5, 0 and 4 answered by legacy itself", hours)
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
			if n != 4 { // get's last hour and its ios/3.1 clients, split's day-old and last hours
				t.Errorf("purged %d rows, want 4", n)
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
