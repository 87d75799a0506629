package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
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
