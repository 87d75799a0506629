package shadow_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"strangler/config"
	"strangler/shadow"
)

func TestNoiseLearnsAFieldThatDiffersBetweenPrimaries(t *testing.T) {
	cmp := newComparer(t, config.Compare{Noise: true})
	noise := cmp.Noise()
	page := func(ts int, name string) shadow.Response {
		return jsonResponse(200, fmt.Sprintf(`{"generated_at":"2025-01-01T00:00:%02dZ","items":[{"id":1,"name":%q,"seen":%d}]}`, ts, name, ts))
	}

	// Before anything is learned the timestamp is a mismatch.
	if res := cmp.Compare(page(1, "Ann"), page(2, "Ann")); !slices.Equal(paths(res), []string{"generated_at", "items[0].seen"}) {
		t.Fatalf("got %q, want the timestamps to differ before learning", paths(res))
	}

	// One double-primary sample is not enough: a fluke must not silence a field.
	if got := noise.Learn(shadow.Asked{}, page(1, "Ann"), page(2, "Ann")); got != nil {
		t.Fatalf("learned %q after one sample, want nothing yet", got)
	}
	if res := cmp.Compare(page(1, "Ann"), page(2, "Ann")); res.Outcome != shadow.Mismatch {
		t.Fatalf("got %v, want the timestamp still compared after one sample", res.Outcome)
	}
	got := noise.Learn(shadow.Asked{}, page(3, "Ann"), page(4, "Ann"))
	want := []string{"generated_at", "items[*].seen"}
	if !slices.Equal(got, want) {
		t.Fatalf("learned %q, want %q", got, want)
	}
	if got := noise.Fields(); !slices.Equal(got, want) {
		t.Errorf("Fields() = %q, want %q", got, want)
	}

	// The noise is ignored from now on; a real difference still is not.
	if res := cmp.Compare(page(5, "Ann"), page(6, "Ann")); res.Outcome != shadow.Match {
		t.Errorf("got %v %+v, want the learned noise ignored", res.Outcome, res.Diffs)
	}
	if res := cmp.Compare(page(5, "Ann"), page(6, "Bob")); !slices.Equal(paths(res), []string{"items[0].name"}) {
		t.Errorf("got %q, want the real difference at items[0].name", paths(res))
	}
	if got := noise.Learn(shadow.Asked{}, page(7, "Ann"), page(8, "Ann")); got != nil {
		t.Errorf("learned %q again, want nothing new", got)
	}
}

func TestNoiseLearnsHeadersAndNeverTheStatus(t *testing.T) {
	cmp := newComparer(t, config.Compare{Noise: true, Headers: []string{"X-Trace"}})
	a, b := jsonResponse(200, `{}`), jsonResponse(500, `{}`)
	a.Header.Set("X-Trace", "1")
	b.Header.Set("X-Trace", "2")
	cmp.Noise().Learn(shadow.Asked{}, a, b)
	if got := cmp.Noise().Learn(shadow.Asked{}, a, b); !slices.Equal(got, []string{"header.X-Trace"}) {
		t.Fatalf("learned %q, want header.X-Trace only", got)
	}
	if res := cmp.Compare(a, b); !slices.Equal(paths(res), []string{"status"}) {
		t.Errorf("got %q, want only the status compared", paths(res))
	}
}

func TestNoiseRespectsUnorderedArrays(t *testing.T) {
	cmp := newComparer(t, config.Compare{Noise: true, Unordered: []string{"tags"}})
	a, b := jsonResponse(200, `{"tags":["a","b"]}`), jsonResponse(200, `{"tags":["b","a"]}`)
	for range 3 {
		if got := cmp.Noise().Learn(shadow.Asked{}, a, b); got != nil {
			t.Fatalf("learned %q from a permuted unordered array, want nothing", got)
		}
	}
}

func TestNoisePreload(t *testing.T) {
	cmp := newComparer(t, config.Compare{Noise: true, Headers: []string{"Date"}})
	err := cmp.Noise().Preload([]string{"generated_at", "header.date", "items[*].seen", "status", "a..b"})
	if err == nil {
		t.Error("got no error, want the status and a..b refused")
	}
	want := []string{"generated_at", "header.Date", "items[*].seen"}
	if got := cmp.Noise().Fields(); !slices.Equal(got, want) {
		t.Fatalf("Fields() = %q, want %q", got, want)
	}
	p, o := jsonResponse(200, `{"generated_at":1,"items":[{"seen":1},{"seen":2}]}`), jsonResponse(200, `{"generated_at":2,"items":[{"seen":3},{"seen":4}]}`)
	p.Header.Set("Date", "Mon")
	o.Header.Set("Date", "Tue")
	if res := cmp.Compare(p, o); res.Outcome != shadow.Match {
		t.Errorf("got %v %+v, want preloaded noise ignored", res.Outcome, res.Diffs)
	}
}

func TestNoiseIsOffUnlessConfigured(t *testing.T) {
	if n := newComparer(t, config.Compare{}).Noise(); n != nil {
		t.Errorf("got a Noise without compare.noise, want nil")
	}
}

func TestNoiseConcurrentUse(t *testing.T) {
	cmp := newComparer(t, config.Compare{Noise: true})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				a := jsonResponse(200, fmt.Sprintf(`{"n%d":%d,"t":%d}`, j%5, i, j))
				b := jsonResponse(200, fmt.Sprintf(`{"n%d":%d,"t":%d}`, j%5, i+1, j+1))
				cmp.Noise().Learn(shadow.Asked{}, a, b)
				cmp.Compare(a, b)
			}
		})
	}
	wg.Wait()
	want := []string{"n0", "n1", "n2", "n3", "n4", "t"}
	if got := cmp.Noise().Fields(); !slices.Equal(got, want) {
		t.Errorf("Fields() = %q, want %q", got, want)
	}
}
