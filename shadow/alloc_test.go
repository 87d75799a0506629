//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation
// counts only hold without it.

package shadow_test

import (
	"io"
	"strings"
	"testing"

	"strangler/config"
	"strangler/shadow"
)

func TestComparingEqualDocumentsAllocatesNothing(t *testing.T) {
	cmp := newComparer(t, config.Compare{Ignore: []string{"items[*].etag"}, Unordered: []string{"items"}})
	p, o := jsonResponse(200, patientPage(false, false)), jsonResponse(200, patientPage(true, false))
	cmp.Compare(p, o) // warm the pool
	if allocs := testing.AllocsPerRun(100, func() { cmp.Compare(p, o) }); allocs != 0 {
		t.Errorf("got %v allocations per comparison, want 0", allocs)
	}
}

func TestCapturingAnAnswerLongerThanTheCapAllocatesNothing(t *testing.T) {
	c := shadow.NewCapture(1024)
	long := strings.Repeat("x", 3000)
	body := strings.NewReader("")
	var r io.Reader = struct{ io.Reader }{body} // as a response body: no WriteTo
	capture := func() {
		c.Reset(1024)
		body.Reset(long)
		if n, err := c.ReadFrom(r); n != 3000 || err != nil || !c.Truncated() {
			t.Fatalf("ReadFrom = %d, %v (truncated %v), want 3000 bytes read, truncated", n, err, c.Truncated())
		}
	}
	capture() // grow the buffer to the cap
	if allocs := testing.AllocsPerRun(100, capture); allocs != 0 {
		t.Errorf("got %v allocations per capture, want 0", allocs)
	}
}
