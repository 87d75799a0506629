//go:build !race

// The race detector makes sync.Pool drop items at random, so allocation
// counts only hold without it.

package shadow_test

import (
	"testing"

	"strangler/config"
)

func TestComparingEqualDocumentsAllocatesNothing(t *testing.T) {
	cmp := newComparer(t, config.Compare{Ignore: []string{"items[*].etag"}, Unordered: []string{"items"}})
	p, o := jsonResponse(200, patientPage(false, false)), jsonResponse(200, patientPage(true, false))
	cmp.Compare(p, o) // warm the pool
	if allocs := testing.AllocsPerRun(100, func() { cmp.Compare(p, o) }); allocs != 0 {
		t.Errorf("got %v allocations per comparison, want 0", allocs)
	}
}
