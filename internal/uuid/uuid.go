// Package uuid makes the facade's ids: a request's (a random, version 4
// UUID) and a journaled write's (a version 7 UUID, ordered by time).
package uuid

import (
	"encoding/hex"
	"math/rand/v2"
	"time"
)

// New returns a random (version 4) UUID. The runtime's per-thread ChaCha8
// generator is plenty for ids and, unlike crypto/rand, costs no system
// call.
func New() string { return format(random(), 4) }

// NewTime returns a version 7 UUID: the Unix milliseconds of at, then
// random bits. A journaled write's id is the journal's primary key: ids
// that grow with time add to the end of its index, where the writes
// committed together share a page, instead of to a random page each.
func NewTime(at time.Time) string {
	b := random()
	ms := uint64(at.UnixMilli())
	for k := range 6 {
		b[k] = byte(ms >> (8 * (5 - k)))
	}
	return format(b, 7)
}

func random() [16]byte {
	var b [16]byte
	for i := 0; i < 16; i += 8 {
		u := rand.Uint64()
		for k := range 8 {
			b[i+k] = byte(u >> (8 * k))
		}
	}
	return b
}

// format sets b's version and RFC 9562 variant and spells it.
func format(b [16]byte, version byte) string {
	b[6] = b[6]&0x0f | version<<4
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}
