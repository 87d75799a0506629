package stats

import (
	"net/netip"
	"strconv"
	"strings"

	"strangler/phi"
)

// maxVersionLen bounds a client version counted by name.
const maxVersionLen = 32

// VersionShaped reports whether v looks like an app version or a product
// token, the only client values counted by name: at most 32 letters,
// digits and . _ - /, ending in a version that starts with a number (or
// v and a number) and has a dotted number in it: 5.2, v1.0.3-beta,
// PatientApp/5.2.1, Mozilla/5.0. A product's name before the version
// must read like a name (phi.FieldName: a letter first, at most four
// digits), so that a record number or a social security number a client
// put there (MRN9988776/5.2, 123-45-6789/1.0) is not counted by name.
//
// The dotted number is stricter than "a digit somewhere" on purpose:
// that rule would count record numbers (MRN9988776), social security
// numbers (123-45-6789) and ISO dates (1970-01-31) a client put where its
// version belongs. Values shaped like an IPv4 address or a day.month.year
// date are not counted either. What remains can still be a value that
// only looks like a version; the report shows the top few only.
func VersionShaped(v string) bool {
	if v == "" || len(v) > maxVersionLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-/", c) >= 0) {
			return false
		}
	}
	version := v
	if i := strings.LastIndexByte(v, '/'); i >= 0 {
		version = v[i+1:]
		for name := range strings.SplitSeq(v[:i], "/") {
			if !phi.FieldName(name) {
				return false
			}
		}
	}
	number := strings.TrimPrefix(strings.TrimPrefix(version, "v"), "V")
	if number == "" || !isDigit(number[0]) || !hasDottedNumber(number) {
		return false
	}
	if a, err := netip.ParseAddr(number); err == nil && a.Is4() {
		return false
	}
	return !isDate(number)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// hasDottedNumber reports whether s has a digit, a dot and a digit in a
// row.
func hasDottedNumber(s string) bool {
	for i := 1; i+1 < len(s); i++ {
		if s[i] == '.' && isDigit(s[i-1]) && isDigit(s[i+1]) {
			return true
		}
	}
	return false
}

// isDate reports whether s reads as a date of birth would: d.m.yyyy,
// m.d.yyyy or 19yy.m.d. Calendar versions (2024.05.1) stay versions.
func isDate(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return false
	}
	n := make([]int, 3)
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || p == "" || p[0] == '+' {
			return false
		}
		n[i] = v
	}
	dayMonth := func(a, b int) bool { return a >= 1 && b >= 1 && (a <= 31 && b <= 12 || a <= 12 && b <= 31) }
	switch {
	case len(parts[2]) == 4 && dayMonth(n[0], n[1]):
		return true
	case len(parts[0]) == 4 && strings.HasPrefix(parts[0], "19") && dayMonth(n[2], n[1]):
		return true
	}
	return false
}
