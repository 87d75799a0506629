package canonical

import (
	"strings"
	"unicode"
)

// Resource is the dual-write resource of a write to the canonical
// escaped path p: what it changes, the path it was routed on without the
// query or a trailing slash (RouteKey), as backends reading paths loosely
// read it (Fold), with each segment that is a decimal integer as
// backends reading an integer id read it (plainIntegers), so that
// /records/4, /records/%34, /records/4/, /records/4.json (Rails' and
// Spring's format suffix) and /records/004 are one resource.
// Writes to one resource reach the secondary in the order the primary
// answered them, whichever routes they came through: a PUT and a DELETE
// of /patients/42 are usually two routes, and were the DELETE to
// overtake a PUT still waiting for the secondary, the secondary would
// answer it 404 (a dead letter) and then create the patient. Taken for
// two resources, PUT /records/4 and PUT /records/4.json, which Rails
// applies to one record, were with the primary at once and could reach
// the secondary in the other order; taking two paths for one only makes
// their writes wait for each other.
//
// The router names the writes it journals by it, and the state store
// re-keys by it the writes an earlier release journaled: one rule.
func Resource(p string) string {
	key := RouteKey(p)
	// A path Fold refuses is refused at the edge (checkLoose): only a
	// Location can name one, which stays a resource of its own.
	if folded, err := Fold(key); err == nil {
		key = folded
	}
	return plainIntegers(key)
}

// ResourceOf is the dual-write resource path names, as a request's path
// names its own (Resource); false when path has no canonical form.
func ResourceOf(path string) (string, bool) {
	p, err := Canonicalize(path)
	if err != nil {
		return "", false
	}
	return Resource(p.Escaped), true
}

// plainIntegers returns canonical path p with each segment that is a
// decimal integer, as backends reading an integer id read one, in its
// plain form: without leading zeros (Rails' to_i, Spring's and Java's
// Long.valueOf, Go's Atoi, PHP's (int), and MySQL and PostgreSQL casting
// a text id all read 007 as 7), leading spaces (%20, which all but Go and
// plain Java skip) or a plus sign (+ or %2B); a minus sign stays, unless
// the integer is 0; and in ASCII digits (decimalDigits). Percent-encoded
// and fullwidth digits are ASCII already (Canonicalize, Fold). Only the
// dual-write resource reads integers so: routes match, and backends get,
// the path as sent.
//
// It returns p itself, without allocating, when no segment changes.
func plainIntegers(p string) string {
	var b []byte // nil until a segment changes
	done := 0    // p[:done] is in b
	for i := 0; i < len(p); {
		end := len(p)
		if j := strings.IndexByte(p[i+1:], '/'); j >= 0 {
			end = i + 1 + j
		}
		seg := p[i+1 : end]
		if plain, ok := plainInteger(seg); ok && plain != seg {
			b = append(append(b, p[done:i+1]...), plain...)
			done = end
		}
		i = end
	}
	if b == nil {
		return p
	}
	return string(append(b, p[done:]...))
}

// plainInteger is segment seg, if it is a decimal integer (spaces, a
// sign, digits), in its plain form (plainIntegers), a part of seg unless
// a minus sign is followed by spaces or zeros or its digits are not
// ASCII; false if it is no integer.
func plainInteger(seg string) (string, bool) {
	s := seg
	for strings.HasPrefix(s, "%20") {
		s = s[3:]
	}
	minus := strings.HasPrefix(s, "-")
	if minus || strings.HasPrefix(s, "+") {
		s = s[1:]
	} else if strings.HasPrefix(s, "%2B") {
		s = s[3:]
	}
	digits, ok := decimalDigits(s)
	if !ok {
		return "", false
	}
	digits = strings.TrimLeft(digits, "0")
	switch {
	case digits == "":
		return "0", true
	case !minus:
		return digits, true
	case len(seg) == len(digits)+1:
		return seg, true // -7: plain already
	}
	return "-" + digits, true
}

// decimalDigits is s, one or more decimal digits, in ASCII: a digit of
// another script (Arabic-Indic ٧, Devanagari ७, percent-encoded) is the
// digit it stands for, as to Java's Long.parseLong, and so to Spring; s
// itself when its digits are ASCII. False if s is anything else.
func decimalDigits(s string) (string, bool) {
	var b []byte // nil while every digit is ASCII
	for i := 0; i < len(s); {
		if c := s[i]; '0' <= c && c <= '9' {
			if b != nil {
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := encodedRuneAt(s, i)
		if n == 0 || !unicode.IsDigit(r) {
			return "", false
		}
		if b == nil {
			b = append(make([]byte, 0, len(s)), s[:i]...)
		}
		b = append(b, '0'+digitValue(r))
		i += n
	}
	switch {
	case s == "":
		return "", false
	case b == nil:
		return s, true
	}
	return string(b), true
}

// digitValue is the value of decimal digit r. Unicode encodes each set of
// decimal digits as a run of ten from 0 to 9 (a stability policy), some
// runs next to each other: r's value is how far it is into its run.
func digitValue(r rune) byte {
	n := 0
	for unicode.IsDigit(r - rune(n) - 1) {
		n++
	}
	return byte(n % 10)
}
