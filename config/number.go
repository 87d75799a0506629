package config

import (
	"fmt"
	"regexp"
	"strconv"
)

// number is how every number in the configuration is written, the way
// people write them: decimal digits, a leading - where the field may
// take a negative, and a fraction with digits on both sides of the point
// (0.5). Refused: a leading 0 (010 is 8 to YAML 1.1 readers, 10 to
// others), a leading +, _ separators, an exponent (1e3), hex (0x10, and
// the hex floats strconv takes, 0x1p4), octal (0o17), binary (0b1),
// .5, 5., .inf and .nan. Durations and sizes are built on it.
const number = `(?:0|[1-9][0-9]*)`

var (
	wholeNumber   = regexp.MustCompile(`^-?` + number + `$`)
	decimalNumber = regexp.MustCompile(`^-?` + number + `(?:\.[0-9]+)?$`)
	// durationText is one or more numbers each followed by a unit, as
	// time.ParseDuration reads them (1h30m, 1.5s, 250ms), or 0.
	durationText = regexp.MustCompile(`^(?:0|(?:` + number + `(?:\.[0-9]+)?(?:ns|us|µs|μs|ms|s|m|h))+)$`)
)

// numberHint ends the messages refusing a number.
const numberHint = "write decimal digits, like 20 or 0.5: no +, leading 0, _, exponent, hex, octal, .inf or .nan"

// ParseWhole parses a whole number written the one way the configuration
// takes (see number).
func ParseWhole(s string) (int64, error) {
	if !wholeNumber.MatchString(s) {
		return 0, fmt.Errorf("%q is not a whole number; %s", s, numberHint)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n, nil
}

// ParseDecimal parses a number with an optional fraction written the one
// way the configuration takes (see number).
func ParseDecimal(s string) (float64, error) {
	if !decimalNumber.MatchString(s) {
		return 0, fmt.Errorf("%q is not a number; %s", s, numberHint)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return f, nil
}
