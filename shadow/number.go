package shadow

import "bytes"

// decimal is a JSON number as sign, significant digits and exponent, so
// that numbers compare by value without the rounding of float64: 1.0 and
// 1, 1e2 and 100, 0 and -0.0 are equal, while 9007199254740993 and
// 9007199254740992 are not.
type decimal struct {
	neg bool
	// The significant digits are digits(lo)…digits(hi-1) of the integer
	// part followed by the fraction part, with leading and trailing zeros
	// left out; lo == hi for zero.
	intp, frac []byte
	lo, hi     int
	// exp is the power of ten of the last significant digit.
	exp int64
	// exact is false when the exponent has too many digits to reason
	// about; such numbers are compared by their literal only.
	exact bool
}

// maxExpDigits keeps exponent arithmetic well inside int64.
const maxExpDigits = 15

// parseDecimal reads a number literal the parser accepted.
func parseDecimal(s []byte) decimal {
	d := decimal{exact: true}
	if s[0] == '-' {
		d.neg = true
		s = s[1:]
	}
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	d.intp, s = s[:i], s[i:]
	if len(s) > 0 && s[0] == '.' {
		i = 1
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		d.frac, s = s[1:i], s[i:]
	}
	n := len(d.intp) + len(d.frac)
	d.lo, d.hi = 0, n
	for d.lo < n && d.digit(d.lo) == '0' {
		d.lo++
	}
	for d.hi > d.lo && d.digit(d.hi-1) == '0' {
		d.hi--
	}
	if d.lo == d.hi {
		d.neg = false // zero, whatever its sign and exponent
		return d
	}
	var exp int64
	if len(s) > 0 { // e or E
		s = s[1:]
		negExp := s[0] == '-'
		if s[0] == '+' || s[0] == '-' {
			s = s[1:]
		}
		for len(s) > 1 && s[0] == '0' {
			s = s[1:]
		}
		if len(s) > maxExpDigits {
			d.exact = false
			return d
		}
		for _, c := range s {
			exp = exp*10 + int64(c-'0')
		}
		if negExp {
			exp = -exp
		}
	}
	d.exp = exp - int64(len(d.frac)) + int64(n-d.hi)
	return d
}

func (d *decimal) digit(k int) byte {
	if k < len(d.intp) {
		return d.intp[k]
	}
	return d.frac[k-len(d.intp)]
}

// numbersEqual compares two number literals by value.
func numbersEqual(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	da, db := parseDecimal(a), parseDecimal(b)
	if !da.exact || !db.exact {
		return false
	}
	if da.neg != db.neg || da.exp != db.exp || da.hi-da.lo != db.hi-db.lo {
		return false
	}
	for k := range da.hi - da.lo {
		if da.digit(da.lo+k) != db.digit(db.lo+k) {
			return false
		}
	}
	return true
}

// hashNumber hashes a number literal so that numbersEqual numbers hash
// alike.
func hashNumber(s []byte) uint64 {
	d := parseDecimal(s)
	if !d.exact {
		return hashBytes(seedNumber^1, s)
	}
	h := uint64(seedNumber)
	if d.neg {
		h = mix(h, 1)
	}
	for k := d.lo; k < d.hi; k++ {
		h = mix(h, uint64(d.digit(k)))
	}
	return mix(h, uint64(d.exp))
}
