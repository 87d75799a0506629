package stats

import (
	"net/netip"
	"strconv"
	"strings"

	"strangler/phi"
)

// maxVersionLen bounds a client version counted by name.
const maxVersionLen = 32

// prereleaseWords are the words a prerelease may spell (each alone or
// followed by a number: rc1, beta2), in any case: SNAPSHOT is Maven's.
var prereleaseWords = []string{"alpha", "beta", "rc", "pre", "preview", "dev", "snapshot", "canary", "nightly", "debug", "release"}

// ClientVersion returns the name a client's app version or product token
// is counted by, and whether it is counted by name at all. Its build
// metadata (from a "+" on) is dropped: 5.2.1+sha.1a2b counts as 5.2.1.
// What remains is at most 32 bytes: an optional product name and "/",
// then v (or V) if the client put one, a dotted number of two to four
// parts (5.2, 5.2.1, 2024.05.1, 5.2.1.3456) and optionally "-" and a
// prerelease of parts separated by "." or "-", each a number or one of a
// few words optionally followed by a number (alpha, beta, rc, pre,
// preview, dev, snapshot, canary, nightly, debug, release: v1.0.3-beta.2,
// 5.2.1-rc1, 1.4.0-SNAPSHOT): PatientApp/5.2.1, Mozilla/5.0.
//
// Free text does not ride in the version: 5.2.1-JohnSmith,
// 5.2.1.JaneDoe, 5.2.1_MRN99 are not counted by name (before, anything
// after the dotted number was). A product's name before the version must
// read like a name (phi.FieldName: a letter first, at most four digits),
// so that a record number or a social security number a client put there
// (MRN9988776/5.2, 123-45-6789/1.0) is not counted by name.
//
// The dotted number is stricter than "a digit somewhere" on purpose:
// that rule would count record numbers (MRN9988776), social security
// numbers (123-45-6789) and ISO dates (1970-01-31) a client put where its
// version belongs. Values shaped like an IPv4 address are not counted
// either, nor those whose numbers, wherever they stand, hold a number
// longer than maxVersionNumber digits (a record number: 5.2.1-9988776) or
// three in a row shaped like a date of birth, a social security number
// or a telephone number (5.2.1-31.01.1970, 123.45.6789, 5.555.123.4567):
// a prerelease of numbers carried them by name. What remains can still be a value that
// only looks like a version, or a product name that is a word a client
// chose; the report shows the top few only.
func ClientVersion(v string) (string, bool) {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '+' {
			v = v[:i]
			break
		}
		if i == maxVersionLen || !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '/') {
			return "", false
		}
	}
	if v == "" {
		return "", false
	}
	version := v
	if i := strings.LastIndexByte(v, '/'); i >= 0 {
		version = v[i+1:]
		for name := range strings.SplitSeq(v[:i], "/") {
			if !phi.FieldName(name) {
				return "", false
			}
		}
	}
	number := strings.TrimPrefix(strings.TrimPrefix(version, "v"), "V")
	core, pre, hasPre := strings.Cut(number, "-")
	if !dottedNumber(core) || hasPre && !prerelease(pre) {
		return "", false
	}
	// Only four parts can be an IPv4 address (ParseAddr's error is an
	// allocation for every version of three).
	if strings.Count(core, ".") == 3 {
		if a, err := netip.ParseAddr(core); err == nil && a.Is4() {
			return "", false
		}
	}
	if identifierShaped(number) {
		return "", false
	}
	return v, true
}

// maxVersionNumber is the most digits a number in a version counted by
// name may have: a build number (5.2.1.3456, 2024.05.1) has a few, a
// record number more.
const maxVersionNumber = 5

// identifierShaped reports whether the numbers of a version (its runs of
// digits, wherever they stand) hold one longer than maxVersionNumber or
// three in a row that read as a date of birth, a social security number
// (3, 2 and 4 digits) or a telephone number (3, 3 and 4).
func identifierShaped(v string) bool {
	var nums [maxVersionLen / 2]string
	n := 0
	for i := 0; i < len(v); {
		if !isDigit(v[i]) {
			i++
			continue
		}
		j := i
		for j < len(v) && isDigit(v[j]) {
			j++
		}
		if j-i > maxVersionNumber {
			return true
		}
		nums[n], n, i = v[i:j], n+1, j
	}
	for k := 0; k+2 < n; k++ {
		a, b, c := nums[k], nums[k+1], nums[k+2]
		if len(a) == 3 && (len(b) == 2 || len(b) == 3) && len(c) == 4 || isDate(a, b, c) {
			return true
		}
	}
	return false
}

// dottedNumber reports whether s is two to four numbers joined by dots.
func dottedNumber(s string) bool {
	dots, digits := 0, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case isDigit(c):
			digits++
		case c == '.' && digits > 0 && dots < 3:
			dots, digits = dots+1, 0
		default:
			return false
		}
	}
	return dots >= 1 && digits > 0
}

// prerelease reports whether s is parts separated by "." or "-", each a
// number or one of prereleaseWords optionally followed by a number.
func prerelease(s string) bool {
	for {
		p, rest, more := s, "", false
		if i := strings.IndexAny(s, ".-"); i >= 0 {
			p, rest, more = s[:i], s[i+1:], true
		}
		word := strings.TrimRight(p, "0123456789")
		if p == "" || word != "" && !knownWord(word) {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

// knownWord reports whether w is one of prereleaseWords, in any case.
func knownWord(w string) bool {
	for _, k := range prereleaseWords {
		if strings.EqualFold(k, w) {
			return true
		}
	}
	return false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// isDate reports whether the numbers a, b and c read as a date of birth
// would: d.m.yyyy or m.d.yyyy of the years 1900 to 2099, or 19yy.m.d.
// Calendar versions (2024.05.1) stay versions, and so does a build
// number after a version (5.2.1.3456 holds 2.1.3456).
func isDate(a, b, c string) bool {
	parts := [3]string{a, b, c}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || p == "" || p[0] == '+' {
			return false
		}
		n[i] = v
	}
	dayMonth := func(a, b int) bool { return a >= 1 && b >= 1 && (a <= 31 && b <= 12 || a <= 12 && b <= 31) }
	switch {
	case len(parts[2]) == 4 && (strings.HasPrefix(parts[2], "19") || strings.HasPrefix(parts[2], "20")) && dayMonth(n[0], n[1]):
		return true
	case len(parts[0]) == 4 && strings.HasPrefix(parts[0], "19") && dayMonth(n[2], n[1]):
		return true
	}
	return false
}
