package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"strangler/domain"
)

func TestSchemaMergesFromManyReplicasAddUp(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.fresh(t)
		replicas := []*Store{openStore(t, dsn, nil), openStore(t, dsn, nil), openStore(t, dsn, nil)}
		// Each merge adds one to the stored count: a lost update would
		// show as a total below the number of merges.
		add := func(st *Store, status int) error {
			return st.MergeSchema(ctx, "get-patient", "GET", status, func(stored []byte) ([]byte, error) {
				var doc struct{ N int }
				if stored != nil {
					if err := json.Unmarshal(stored, &doc); err != nil {
						return nil, err
					}
				}
				doc.N++
				return json.Marshal(doc)
			})
		}
		var wg sync.WaitGroup
		errs := make(chan error, 60)
		for _, st := range replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 20 {
					errs <- add(st, 200)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if err := add(replicas[0], 404); err != nil {
			t.Fatal(err)
		}
		if err := replicas[1].MergeSchema(ctx, "other", "GET", 200, func([]byte) ([]byte, error) { return []byte(`{"N":1}`), nil }); err != nil {
			t.Fatal(err)
		}
		docs, err := replicas[2].LoadSchemas(ctx, "get-patient")
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range docs {
			var doc struct{ N int }
			json.Unmarshal(d, &doc)
			got = append(got, strconv.Itoa(doc.N))
		}
		if fmt.Sprint(got) != "[60 1]" {
			t.Errorf("get-patient's schemas hold %v merges, want [60 1] (200, then 404)", got)
		}
		all, err := replicas[0].LoadSchemas(ctx, "")
		if err != nil || len(all) != 3 {
			t.Errorf("every route's schemas: %d, %v; want 3", len(all), err)
		}

		t.Run("a merge that fails or is not JSON changes nothing", func(t *testing.T) {
			if err := replicas[0].MergeSchema(ctx, "get-patient", "GET", 404, func([]byte) ([]byte, error) { return nil, fmt.Errorf("no") }); err == nil {
				t.Error("a failing merge reported no error")
			}
			if err := replicas[0].MergeSchema(ctx, "get-patient", "GET", 404, func([]byte) ([]byte, error) { return []byte("{"), nil }); err == nil {
				t.Error("a merge that is not JSON was stored")
			}
			docs, _ := replicas[0].LoadSchemas(ctx, "get-patient")
			if len(docs) != 2 || !json.Valid(docs[1]) {
				t.Errorf("after failed merges: %q", docs)
			}
		})
	})
}

// TestPurgeSchemasDeletesOnlyRoutesNotKeptAndLongUnchanged: a route not
// kept goes once its newest schema is older than notSince, with an audit
// entry in the same transaction; a kept route, or one a replica still
// adds to, stays.
func TestPurgeSchemasDeletesOnlyRoutesNotKeptAndLongUnchanged(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		c := newClock()
		st := newStore(t, b, c)
		put := func(route string, status int) {
			t.Helper()
			if err := st.MergeSchema(ctx, route, "GET", status, func([]byte) ([]byte, error) { return []byte(`{}`), nil }); err != nil {
				t.Fatal(err)
			}
		}
		put("kept", 200)
		put("gone", 200)
		put("gone", 404)
		put("still-learning", 200)
		c.Advance(2 * time.Hour)
		put("still-learning", 404) // a replica on the old configuration
		audit := func(p PurgedSchemas) domain.AuditEntry {
			return domain.AuditEntry{Actor: "config", Action: "schemas_purged", Route: p.Route, Detail: fmt.Sprint(p.Schemas)}
		}
		purged, err := st.PurgeSchemas(ctx, []string{"kept"}, c.Now().Add(-time.Hour), audit)
		if err != nil {
			t.Fatal(err)
		}
		if len(purged) != 1 || purged[0] != (PurgedSchemas{Route: "gone", Schemas: 2}) {
			t.Errorf("purged %+v, want gone's 2", purged)
		}
		for route, want := range map[string]int{"kept": 1, "gone": 0, "still-learning": 2} {
			if docs, err := st.LoadSchemas(ctx, route); err != nil || len(docs) != want {
				t.Errorf("%s: %d schemas left (%v), want %d", route, len(docs), err, want)
			}
		}
		entries, err := st.AuditLog(ctx, AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Route != "gone" || entries[0].Detail != "2" {
			t.Errorf("audit %+v, want the one purge of gone", entries)
		}
		if v, err := st.VerifyAudit(ctx); err != nil || v.Break != nil {
			t.Errorf("the audit chain after the purge: %+v %v", v, err)
		}
	})
}
