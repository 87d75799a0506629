package control

import (
	"strconv"

	"strangler/domain"
)

// ModeText says a mode and, where it splits traffic, its percent:
// "fallback at 25%", "modern" (a percent of 100 goes unsaid). The status
// page, the audit notes and the CLI all say a route's mode with it.
func ModeText(m domain.Mode, pct *float64) string {
	if !m.TakesPercent() || pct == nil || *pct == 100 {
		return string(m)
	}
	return string(m) + " at " + PercentText(*pct)
}

// PercentText writes a percent as few digits as it needs: "25%", "0.5%".
func PercentText(p float64) string { return strconv.FormatFloat(p, 'f', -1, 64) + "%" }
