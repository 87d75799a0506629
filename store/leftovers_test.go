package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"strangler/domain"
)

// TestPurgeRemovedRoutesDeletesOnlyRoutesNotKeptAndLongUnwritten: a
// route not kept loses its schemas, samples and noise once none was
// written since notSince, with an audit entry in the same transaction; a
// kept route, or one a replica still writes for (a schema, or only a
// sample), keeps them.
func TestPurgeRemovedRoutesDeletesOnlyRoutesNotKeptAndLongUnwritten(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		c := newClock()
		st := newStore(t, b, c)
		schema := func(route string, status int) {
			t.Helper()
			if err := st.MergeSchema(ctx, route, "GET", status, func([]byte) ([]byte, error) { return []byte(`{}`), nil }); err != nil {
				t.Fatal(err)
			}
		}
		sample := func(route string) {
			t.Helper()
			if err := st.AddSample(ctx, route, c.Now(), []byte(`{"diffs":[]}`), 100); err != nil {
				t.Fatal(err)
			}
		}
		noise := func(route, path string) {
			t.Helper()
			if err := st.AddNoise(ctx, route, path); err != nil {
				t.Fatal(err)
			}
		}
		schema("kept", 200)
		sample("kept")
		noise("kept", "updated_at")
		schema("gone", 200)
		schema("gone", 404)
		sample("gone")
		noise("gone", "updated_at")
		noise("gone", "etag")
		sample("only-samples")
		noise("only-noise", "updated_at")
		noise("still-sampling", "etag")
		schema("still-learning", 200)
		schema("still-sampling", 200)
		c.Advance(2 * time.Hour)
		schema("still-learning", 404) // a replica on the old configuration
		sample("still-sampling")
		audit := func(l Leftovers) domain.AuditEntry {
			return domain.AuditEntry{Actor: "config", Action: "route_data_purged", Route: l.Route, Detail: fmt.Sprint(l.Schemas, l.Samples, l.Noise)}
		}
		purged, err := st.PurgeRemovedRoutes(ctx, []string{"kept"}, c.Now().Add(-time.Hour), audit)
		if err != nil {
			t.Fatal(err)
		}
		want := []Leftovers{{Route: "gone", Schemas: 2, Samples: 1, Noise: 2}, {Route: "only-noise", Noise: 1}, {Route: "only-samples", Samples: 1}}
		if fmt.Sprint(purged) != fmt.Sprint(want) {
			t.Errorf("purged %+v, want %+v", purged, want)
		}
		for route, want := range map[string][3]int{"kept": {1, 1, 1}, "gone": {0, 0, 0}, "only-samples": {0, 0, 0}, "only-noise": {0, 0, 0},
			"still-learning": {2, 0, 0}, "still-sampling": {1, 1, 1}} {
			docs, err := st.LoadSchemas(ctx, route)
			if err != nil {
				t.Fatal(err)
			}
			samples, err := st.Samples(ctx, route, 0)
			if err != nil {
				t.Fatal(err)
			}
			fields, err := st.Noise(ctx, route)
			if err != nil {
				t.Fatal(err)
			}
			if got := [3]int{len(docs), len(samples), len(fields)}; got != want {
				t.Errorf("%s: %d schemas, %d samples and %d noise fields left, want %v", route, got[0], got[1], got[2], want)
			}
		}
		entries, err := st.AuditLog(ctx, AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 3 || entries[0].Route != "only-samples" || entries[1].Route != "only-noise" || entries[2].Route != "gone" || entries[2].Detail != "2 1 2" {
			t.Errorf("audit %+v, want the purges of gone, only-noise and only-samples", entries)
		}
		if v, err := st.VerifyAudit(ctx); err != nil || v.Break != nil {
			t.Errorf("the audit chain after the purge: %+v %v", v, err)
		}
	})
}
