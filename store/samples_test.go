package store

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func TestSamples(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b, nil)
		for i := range 5 {
			sample := fmt.Sprintf(`{"n": %d, "diff": ["$.name"]}`, i)
			if err := s.AddSample(ctx, "get", t0.Add(time.Duration(i)*time.Second), []byte(sample), 3); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AddSample(ctx, "list", t0, []byte(`{"n": 99}`), 3); err != nil {
			t.Fatal(err)
		}

		t.Run("each route keeps only its newest samples", func(t *testing.T) {
			got, err := s.Samples(ctx, "get", 10)
			if err != nil {
				t.Fatal(err)
			}
			var ns []int
			for _, sm := range got {
				var v struct{ N int }
				if err := json.Unmarshal(sm.Data, &v); err != nil {
					t.Fatalf("sample %s: %v", sm.Data, err)
				}
				ns = append(ns, v.N)
				if sm.Route != "get" || !sm.At.Equal(t0.Add(time.Duration(v.N)*time.Second)) {
					t.Errorf("got %s at %v, want get at t0+%ds", sm.Route, sm.At, v.N)
				}
			}
			if want := []int{4, 3, 2}; !reflect.DeepEqual(ns, want) {
				t.Errorf("got samples %v, want %v, newest first", ns, want)
			}
		})

		t.Run("an empty route lists every route's samples", func(t *testing.T) {
			got, err := s.Samples(ctx, "", 10)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 4 {
				t.Errorf("got %d samples, want 4", len(got))
			}
			got, err = s.Samples(ctx, "", 2)
			if err != nil || len(got) != 2 {
				t.Errorf("limit 2: got %d, %v; want 2", len(got), err)
			}
		})

		t.Run("a sample must be JSON", func(t *testing.T) {
			if err := s.AddSample(ctx, "get", t0, []byte(`{not json`), 3); err == nil {
				t.Error("got no error")
			}
		})
	})
}

func TestNoise(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b, nil)
		for _, n := range [][2]string{{"get", "$.updated_at"}, {"get", "$.etag"}, {"get", "$.updated_at"}, {"list", "$[*].id"}} {
			if err := s.AddNoise(ctx, n[0], n[1]); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Noise(ctx, "get")
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, n := range got {
			paths = append(paths, n.Path)
		}
		if want := []string{"$.etag", "$.updated_at"}; !reflect.DeepEqual(paths, want) {
			t.Errorf("got %v, want %v: a field added twice is stored once", paths, want)
		}
		all, err := s.Noise(ctx, "")
		if err != nil || len(all) != 3 {
			t.Errorf("every route: got %d, %v; want 3", len(all), err)
		}
	})
}

func TestRepairKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)
		for _, k := range []string{"42", "7", "42", "99"} {
			clk.Advance(time.Second)
			if err := s.AddRepairKey(ctx, "patients", k); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AddRepairKey(ctx, "photos", "42"); err != nil {
			t.Fatal(err)
		}
		pending := func(t *testing.T, limit int) []string {
			t.Helper()
			keys, err := s.PendingRepairKeys(ctx, "patients", limit)
			if err != nil {
				t.Fatal(err)
			}
			return keys
		}

		t.Run("a key queued twice is pending once, oldest first", func(t *testing.T) {
			if got, want := pending(t, 10), []string{"42", "7", "99"}; !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
			if got := pending(t, 1); !reflect.DeepEqual(got, []string{"42"}) {
				t.Errorf("limit 1: got %v, want [42]", got)
			}
		})

		t.Run("the pending keys are counted per entity", func(t *testing.T) {
			if n, err := s.CountRepairKeys(ctx, "patients"); err != nil || n != 3 {
				t.Errorf("got %d, %v; want 3", n, err)
			}
		})

		t.Run("done keys leave the queue, and only of their entity", func(t *testing.T) {
			if err := s.DoneRepairKeys(ctx, "patients", []string{"42", "7", "unknown"}); err != nil {
				t.Fatal(err)
			}
			if got := pending(t, 10); !reflect.DeepEqual(got, []string{"99"}) {
				t.Errorf("got %v, want [99]", got)
			}
			photos, err := s.PendingRepairKeys(ctx, "photos", 10)
			if err != nil || !reflect.DeepEqual(photos, []string{"42"}) {
				t.Errorf("photos: got %v, %v; want [42]", photos, err)
			}
		})

		t.Run("a done key found missing again is pending again", func(t *testing.T) {
			clk.Advance(time.Second)
			if err := s.AddRepairKey(ctx, "patients", "42"); err != nil {
				t.Fatal(err)
			}
			if got := pending(t, 10); !reflect.DeepEqual(got, []string{"99", "42"}) {
				t.Errorf("got %v, want [99 42]", got)
			}
		})
	})
}
