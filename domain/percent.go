package domain

import (
	"errors"
	"fmt"
	"strconv"
)

// PercentSlots is how finely a route's share of traffic to modern is
// split: each request draws one of 10000 slots (a sticky client always
// the same one), so a share is a whole number of 0.01% steps.
const PercentSlots = 10000

// PercentInSlots is the number of slots a share p (0 to 100) sends to
// modern.
func PercentInSlots(p float64) int { return int(p*(PercentSlots/100) + 0.5) }

// ServedPercent is the share p (0 to 100) as traffic is split by it: a
// whole number of slots, so 99.996 is 100 and 0.004 is 0. A share an
// older release stored finer than a slot is read as this, so that what
// is shown, compared and stepped from is what the router serves.
func ServedPercent(p float64) float64 { return float64(PercentInSlots(p)) / (PercentSlots / 100) }

// CheckPercent returns p as a route's share of traffic to modern, or why
// it cannot be one, worded to follow the percent ("is not from 0 to
// 100"), which the caller names as its field is named. A share finer than a slot is refused rather than
// rounded: shown as written, it would say 99.996% while the router sent
// every request to modern. -0 comes back as 0.
func CheckPercent(p float64) (float64, error) {
	// Written so that NaN, which every comparison calls false, fails too.
	if !(p >= 0 && p <= 100) {
		return 0, errors.New("is not from 0 to 100")
	}
	whole := ServedPercent(p)
	if whole != p {
		return 0, fmt.Errorf("is finer than the 0.01%% steps traffic is split in; the nearest is %s", PercentString(whole))
	}
	return whole, nil
}

// PercentString writes a percent in decimal digits, never an exponent,
// as a config file takes it.
func PercentString(p float64) string { return strconv.FormatFloat(p, 'f', -1, 64) }
