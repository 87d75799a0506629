package domain

import (
	"bytes"
	"strconv"
)

// Number is a JSON number as sign, significant digits and exponent, so
// that numbers compare by value without the rounding of float64: 1.0 and
// 1, 1e2 and 100, 0 and -0.0 are equal, while 9007199254740993 and
// 9007199254740992 are not.
type Number struct {
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

// ParseNumber reads a JSON number literal, one a JSON parser accepted.
func ParseNumber(s []byte) Number {
	d := Number{exact: true}
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

func (d *Number) digit(k int) byte {
	if k < len(d.intp) {
		return d.intp[k]
	}
	return d.frac[k-len(d.intp)]
}

// NumbersEqual compares two JSON number literals by value: 1, 1.0 and
// 1e0 are equal. It is how every number is compared, in shadow
// comparisons as in FieldPath.Find's canonical text.
func NumbersEqual(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	da, db := ParseNumber(a), ParseNumber(b)
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

// Integer reports whether d is a whole number: zero, or exact with no
// significant digit after the point.
func (d Number) Integer() bool { return d.lo == d.hi || d.exact && d.exp >= 0 }

// Exact reports whether d's exponent was small enough to reason about;
// a number that is not exact compares by its literal only.
func (d Number) Exact() bool { return d.exact }

// Digits calls f with each significant digit, then the power of ten of
// the last one and the sign: equal numbers give the same calls. It is for
// hashing without allocating.
func (d Number) Digits(f func(digit byte)) (exp int64, neg bool) {
	for k := d.lo; k < d.hi; k++ {
		f(d.digit(k))
	}
	return d.exp, d.neg
}

// maxPlainExp bounds how many zeros Canonical writes out before it
// switches to an exponent.
const maxPlainExp = 21

// AppendCanonical appends the one spelling of d's value: no leading or
// trailing zeros, no exponent unless the number is very large or very
// small ("1", "0.25", "1000", "15e30"). lit is d's literal, appended as it
// is when d is not exact.
func (d Number) AppendCanonical(dst, lit []byte) []byte {
	switch {
	case !d.exact:
		return append(dst, lit...)
	case d.lo == d.hi:
		return append(dst, '0')
	}
	if d.neg {
		dst = append(dst, '-')
	}
	n := int64(d.hi - d.lo)
	switch {
	case d.exp >= 0 && d.exp <= maxPlainExp:
		for k := d.lo; k < d.hi; k++ {
			dst = append(dst, d.digit(k))
		}
		for range d.exp {
			dst = append(dst, '0')
		}
	case d.exp < 0 && -d.exp <= maxPlainExp+n:
		point := n + d.exp // digits before the point
		if point <= 0 {
			dst = append(dst, '0', '.')
			for range -point {
				dst = append(dst, '0')
			}
		}
		for k := int64(0); k < n; k++ {
			if k == point && point > 0 {
				dst = append(dst, '.')
			}
			dst = append(dst, d.digit(d.lo+int(k)))
		}
	default:
		for k := d.lo; k < d.hi; k++ {
			dst = append(dst, d.digit(k))
		}
		dst = append(dst, 'e')
		dst = strconv.AppendInt(dst, d.exp, 10)
	}
	return dst
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
