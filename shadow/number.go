package shadow

import "strangler/domain"

// hashNumber hashes a number literal so that numbers equal by value
// (domain.NumbersEqual) hash alike.
func hashNumber(s []byte) uint64 {
	d := domain.ParseNumber(s)
	if !d.Exact() {
		return hashBytes(seedNumber^1, s)
	}
	h := uint64(seedNumber)
	exp, neg := d.Digits(func(c byte) { h = mix(h, uint64(c)) })
	if neg {
		h = mix(h, 1)
	}
	return mix(h, uint64(exp))
}
