package shadow_test

import (
	"strings"
	"testing"
	"time"

	"strangler/config"
	"strangler/phi"
	"strangler/shadow"
)

// TestAnUnorderedArrayOfRepeatedValuesComparesInLinearTime: an unordered
// array of a few values repeated (statuses, flags, tags), in another
// order on each side, was matched in n²/8 steps: 11 s of CPU for a
// 160 KB answer, minutes for one at max_body (1 MiB), on every shadow
// copy, so that a backend answering so took the facade's CPU. Elements
// of equal hash that differ (a key twice, in another order) are tried a
// bounded number of times. Each comparison here took minutes before and
// takes about a second now; the bound is a minute, so that a loaded
// machine does not fail it.
func TestAnUnorderedArrayOfRepeatedValuesComparesInLinearTime(t *testing.T) {
	cmp, err := shadow.NewComparer(config.Compare{Unordered: []string{"tags"}}, phi.RandomHasher())
	if err != nil {
		t.Fatal(err)
	}
	list := func(elems string, n int) string {
		return `{"tags":[` + strings.TrimSuffix(strings.Repeat(elems+",", n), ",") + `]}`
	}
	for _, tc := range []struct {
		name, primary, other string
		want                 shadow.Outcome
	}{
		{"two values, swapped", list(`1,2`, 1<<16), list(`2,1`, 1<<16), shadow.Match},
		{"equal hashes, unequal values", list(`{"a":1,"a":2}`, 1<<14), list(`{"a":2,"a":1}`, 1<<14), shadow.Mismatch},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan shadow.Outcome, 1)
			go func() { done <- cmp.Compare(jsonResponse(200, tc.primary), jsonResponse(200, tc.other)).Outcome }()
			select {
			case got := <-done:
				if got != tc.want {
					t.Errorf("got %v, want %v", got, tc.want)
				}
			case <-time.After(time.Minute):
				t.Fatalf("comparing two answers of %d KiB took over a minute", len(tc.primary)>>10)
			}
		})
	}
}
