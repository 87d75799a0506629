package phi_test

import (
	"testing"

	"strangler/phi"
)

// BenchmarkDigest measures the keyed digest that names a journaled
// write's resource, three of which a dual write takes.
func BenchmarkDigest(b *testing.B) {
	h := phi.RandomHasher()
	b.ReportAllocs()
	for b.Loop() {
		h.Digest("resource", "/records/1234")
	}
}
