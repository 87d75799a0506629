package shadow

import "encoding/binary"

// Structural hashes let an unordered array find, for each element, the few
// elements of the other side that may equal it, instead of comparing every
// pair. They need not resist attack: a collision only costs one more full
// comparison.

const (
	seedNull   = 0x6a09e667f3bcc908
	seedFalse  = 0xbb67ae8584caa73b
	seedTrue   = 0x3c6ef372fe94f82b
	seedNumber = 0xa54ff53a5f1d36f1
	seedString = 0x510e527fade682d1
	seedObject = 0x9b05688c2b3e6c1f
	seedArray  = 0x1f83d9abfb41bd6b
	seedSet    = 0x5be0cd19137e2179
)

// mix folds v into h (a splitmix64 finaliser over the sum).
func mix(h, v uint64) uint64 {
	z := h + v + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func hashBytes(h uint64, b []byte) uint64 {
	for len(b) >= 8 {
		h = mix(h, binary.LittleEndian.Uint64(b))
		b = b[8:]
	}
	var tail [8]byte
	copy(tail[:], b)
	return mix(h, binary.LittleEndian.Uint64(tail[:])^uint64(len(b))<<56)
}
