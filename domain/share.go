package domain

import "math/big"

// Share is N counted of Of: fallbacks of the requests modern was asked,
// mismatches of the shadow comparisons, modern's errors of its answers.
type Share struct{ N, Of int64 }

// Percent is the share in percent, 0 of nothing.
func (s Share) Percent() float64 {
	if s.Of == 0 {
		return 0
	}
	return float64(s.N) * 100 / float64(s.Of)
}

// Past reports whether the share is more than limit percent; a share of
// nothing is past no limit. Decided exactly, as every gate and the guard
// decide it: as floats, 7 of 100 was 7.000000000000001%, past a limit of
// 7%, and 29 of 1000 past 2.9%.
func (s Share) Past(limit float64) bool {
	if s.Of <= 0 {
		return false
	}
	// The shortest decimal that reads back as limit is the one the file
	// or the API gave.
	lim, ok := new(big.Rat).SetString(PercentString(limit))
	if !ok {
		return false
	}
	v := new(big.Rat).SetFrac(new(big.Int).Mul(big.NewInt(s.N), big.NewInt(100)), big.NewInt(s.Of))
	return v.Cmp(lim) > 0
}
