package shadow_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"strangler/config"
	"strangler/phi"
	"strangler/shadow"
)

// TestLargeAnswersCompareInAboutLinearTime: answers a backend may send
// within max_body were compared in time quadratic in their size, minutes
// of CPU for one answer of a few hundred KiB, on every shadow copy, so
// that a backend answering so took the facade's CPU:
//   - an unordered array of a few values repeated (statuses, tags), in
//     another order on each side (11 s for 160 KB);
//   - elements of equal hash that differ (a key twice, in another order);
//   - a large object with one escaped key, which turned off the sorted
//     match of its members (5 s for 280 KB), or with a key repeated
//     (2.5 s for 120 KB);
//   - two large objects left unmatched in an unordered array, scored for
//     likeness member by member (10 s for 550 KB).
//
// Each takes about a second or less now; the bound is a minute, so that
// a loaded machine does not fail it.
func TestLargeAnswersCompareInAboutLinearTime(t *testing.T) {
	cmp, err := shadow.NewComparer(config.Compare{Unordered: []string{"tags", "items"}}, phi.RandomHasher())
	if err != nil {
		t.Fatal(err)
	}
	repeat := func(elems string, n int) string { return strings.TrimSuffix(strings.Repeat(elems+",", n), ",") }
	// members are n members "k000000":0…, in reverse order if reversed,
	// after first.
	members := func(n int, reversed bool, first string) string {
		var b strings.Builder
		b.WriteString(first)
		for i := range n {
			k := i
			if reversed {
				k = n - 1 - i
			}
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `"k%06d":%d`, k, k)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name, primary, other string
		want                 shadow.Outcome
	}{
		{"an unordered array of two values, swapped",
			`{"tags":[` + repeat(`1,2`, 1<<16) + `]}`, `{"tags":[` + repeat(`2,1`, 1<<16) + `]}`, shadow.Match},
		{"unordered elements of equal hashes and unequal values",
			`{"tags":[` + repeat(`{"a":1,"a":2}`, 1<<14) + `]}`, `{"tags":[` + repeat(`{"a":2,"a":1}`, 1<<14) + `]}`, shadow.Mismatch},
		{"an object with an escaped key, permuted",
			`{` + members(1<<16, false, `"\u0061":1`) + `}`, `{` + members(1<<16, true, `"\u0061":1`) + `}`, shadow.Match},
		{"an object with a key repeated",
			`{` + repeat(`"a":1`, 1<<17) + `}`, `{` + repeat(`"a":1.0`, 1<<17) + `}`, shadow.Match},
		{"two large objects unmatched in an unordered array",
			`{"items":[{` + members(3<<14, false, `"x":1`) + `},{` + members(3<<14, false, `"y":1`) + `}]}`,
			`{"items":[{` + members(3<<14, true, `"z":1`) + `},{` + members(3<<14, true, `"w":1`) + `}]}`, shadow.Mismatch},
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
