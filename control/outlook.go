package control

import (
	"cmp"
	"fmt"
	"math"
	"time"

	"strangler/config"
	"strangler/domain"
	"strangler/internal/human"
	"strangler/store"
)

// NextStep is the flip that would move a route on along the lifecycle,
// and what stands in its way now.
type NextStep struct {
	// Mode and Percent are where the route would go. Retire says the route
	// already serves all of its traffic from modern: what is left is
	// retiring its legacy path, which the verdict decides.
	Mode    string   `json:"mode,omitempty"`
	Percent *float64 `json:"percent,omitempty"`
	Retire  bool     `json:"retire,omitempty"`
	// Gates are the route's gates at the rates they judge a flip by (the
	// previous hour and the current one); a flip to Mode is refused while
	// one does not pass. Retiring is judged by the verdict, not the gates.
	Gates []GateCheck `json:"gates"`
	// Blockers say, one line each, what stands in the way: each failing
	// gate with its number, or when retiring, the verdict's missing days
	// and requests. Empty when nothing does.
	Blockers []string `json:"blockers"`
}

// Outlook says how far the route is from a retirable verdict, and when
// it would get there at the current trend.
type Outlook struct {
	// MissingDays is how much longer the route must go without a fallback
	// or legacy answering a request itself (retire_after since the last
	// one, or since its counts begin); MissingRequests how many more
	// requests modern must serve within retire_after.
	MissingDays     float64 `json:"missing_days"`
	MissingRequests int64   `json:"missing_requests"`
	// missingWhat says what MissingDays must pass without: "without a
	// fallback".
	missingWhat string
	// FallbacksPerDay are the fallbacks of each of the last 7 days
	// (24-hour spans ending now), oldest first; confirmed_missing ones are
	// not among them. FallbackTrend is how the daily count changes per
	// day, from a least-squares line through the fallbacks of each hour of
	// those days that had traffic: below 0 they are falling.
	FallbacksPerDay []int64 `json:"fallbacks_per_day"`
	FallbackTrend   float64 `json:"fallback_trend_per_day"`
	// ModernPerDay is how many requests modern served in the last 24 hours.
	ModernPerDay int64 `json:"modern_per_day"`
	// RetirableAt is when the verdict would turn retirable if fallbacks
	// keep falling as they did and modern keeps serving as many requests;
	// nil when it is retirable now, or never at this trend.
	RetirableAt *time.Time `json:"retirable_at,omitempty"`
	// Summary says the same in a sentence.
	Summary string `json:"summary"`
}

// trendDays is how many days of fallbacks the trend is fitted to.
const trendDays = 7

// nextStep is the flip after mode and percent on route rt, judged by the
// gate checks and the dual writes the route still owes (owes): a flip
// that would send writes straight to a backend they are owed to is
// refused (see inFlight), and retiring waits for all of them. The
// lifecycle decides the order; within fallback and modern, the next step
// is all of the traffic.
func nextStep(rt *config.Route, mode domain.Mode, percent *float64, gates []GateCheck, out Outlook, owes []owed) NextStep {
	n := NextStep{Gates: gates, Blockers: []string{}}
	if n.Gates == nil {
		n.Gates = []GateCheck{}
	}
	switch {
	case mode.TakesPercent() && domain.FullPercent(percent) < 100:
		all := 100.0
		n.Mode, n.Percent = string(mode), &all
	case !mode.Last():
		n.Mode = string(mode.Next(writes(rt)))
	default:
		n.Retire, n.Gates = true, []GateCheck{}
		if len(owes) > 0 {
			n.Blockers = append(n.Blockers, owedText(owes)+": deliver or discard them (strangler repairs list --route "+rt.Name+")")
		}
		if out.MissingDays > 0 {
			n.Blockers = append(n.Blockers, fmt.Sprintf("retire_after %s: %s more %s", human.Duration(time.Duration(rt.RetireAfter)), human.Days(out.MissingDays), out.missingWhat))
		}
		if out.MissingRequests > 0 {
			n.Blockers = append(n.Blockers, fmt.Sprintf("retire_min_requests %d: %d more served by modern within %s", rt.RetireMinRequests, out.MissingRequests, human.Duration(time.Duration(rt.RetireAfter))))
		}
		return n
	}
	to := *rt
	to.Mode, to.Percent = domain.Mode(n.Mode), nil
	if n.Percent != nil {
		p := config.Percent(*n.Percent)
		to.Percent = &p
	}
	for _, o := range owes {
		if writesTo(&to, o.secondary) {
			n.Blockers = append(n.Blockers, fmt.Sprintf("%s: the flip would send writes straight to %s ahead of them, and is refused until they are delivered or discarded (strangler repairs list --route %s)",
				owedText([]owed{o}), o.secondary, rt.Name))
		}
	}
	for _, g := range gates {
		if !g.Passes {
			n.Blockers = append(n.Blockers, fmt.Sprintf("%s %v%%: the %s is %.3g%%", g.Gate, g.LimitPercent, g.Rate, g.ValuePercent))
		}
	}
	return n
}

// writes reports whether a route matches only a method that changes
// something: its endpoint migrates through dual-write.
func writes(rt *config.Route) bool {
	switch rt.Match.Method {
	case "POST", "PUT", "PATCH", "DELETE":
		return true
	}
	return false
}

// outlook judges how far route rt is from a retirable verdict as of now,
// from its counts over retire_after (window), its hours of the last
// trendDays days, modern's requests of the last day, the verdict and the
// dual writes the route still owes (owes), which no trend of traffic
// says when they are delivered.
func outlook(rt *config.Route, window store.CountTotals, hours []domain.HourCount, modernPerDay int64, retirable bool, owes []owed, now time.Time) Outlook {
	after := time.Duration(rt.RetireAfter)
	days := dailyFallbacks(hours, now, trendDays)
	fit, fitted := fitFallbacks(hours, now)
	o := Outlook{FallbacksPerDay: days, ModernPerDay: modernPerDay}
	if fitted {
		// Fallbacks per hour change by fit.slope an hour: the daily count
		// by 24 times that, every day.
		o.FallbackTrend = fit.slope * 24 * 24
	}
	// When fallbacks stop for good: now if there were none; after the
	// last one if none came in the last 24 hours; else where the trend
	// reaches zero.
	var quiet time.Time
	var why string
	switch {
	case window.Fallbacks == 0:
		quiet = now.Add(-after)
	case days[len(days)-1] == 0:
		quiet = cmp.Or(window.LastFallbackAt, now)
	case fitted && fit.slope < 0:
		quiet = now.Add(time.Duration(math.Max(fit.now/-fit.slope, 0) * float64(time.Hour)))
		why = fmt.Sprintf("fallbacks falling by %.3g a day, every day", -o.FallbackTrend)
	}
	clean, what := cleanSince(window)
	o.missingWhat = what
	if !clean.IsZero() {
		o.MissingDays = math.Max(after.Hours()-now.Sub(clean).Hours(), 0) / 24
	}
	o.MissingRequests = max(int64(rt.RetireMinRequests)-window.ModernServed(), 0)

	switch {
	case retirable:
		o.Summary = "retirable now"
		return o
	case len(owes) > 0:
		o.Summary = "not before they are delivered or discarded: " + owedText(owes)
		return o
	case window.LastLegacyHour.Equal(now.UTC().Truncate(time.Hour)):
		o.Summary = fmt.Sprintf("not while legacy answers requests itself: it still did this hour (%d in the last %s)", window.Legacy, human.Duration(after))
		return o
	case quiet.IsZero() && !fitted:
		o.Summary = fmt.Sprintf("no trend yet: %d fallbacks in the last 24h, and too few hours with traffic to see where they go", days[len(days)-1])
		return o
	case quiet.IsZero():
		o.Summary = fmt.Sprintf("not at the current trend: fallbacks are not falling (%d in the last 24h)", days[len(days)-1])
		return o
	}
	at := quiet.Add(after)
	if !clean.IsZero() && clean.Add(after).After(at) {
		at = clean.Add(after)
	}
	if o.MissingRequests > 0 {
		// Modern must serve retire_min_requests within retire_after at its
		// current daily rate: never if the rate is too low for that.
		need := float64(rt.RetireMinRequests) / math.Max(after.Hours()/24, 1)
		if float64(modernPerDay) < need {
			o.Summary = fmt.Sprintf("not at the current rate: modern served %d requests in the last 24h, and %d within %s need %.0f a day",
				modernPerDay, rt.RetireMinRequests, human.Duration(after), math.Ceil(need))
			return o
		}
		if served := now.Add(time.Duration(float64(o.MissingRequests) / float64(modernPerDay) * float64(24*time.Hour))); served.After(at) {
			at = served
		}
	}
	at = at.UTC().Truncate(time.Minute)
	o.RetirableAt = &at
	o.Summary = "at the current trend, retirable around " + human.Minute(at)
	if why != "" {
		o.Summary += " (" + why + ")"
	}
	return o
}

// cleanSince is when the record the verdict needs begins: after the last
// fallback, after the last hour legacy answered a request itself, or
// where the route's counts begin, whichever is latest; and what the
// route must go on without until retire_after has passed since then.
// Zero when the route has no counts.
func cleanSince(window store.CountTotals) (time.Time, string) {
	at, what := window.FirstHour, "on record (its counts begin "+human.Minute(window.FirstHour)+")"
	if window.Legacy > 0 && window.LastLegacyHour.Add(time.Hour).After(at) {
		at, what = window.LastLegacyHour.Add(time.Hour), "without legacy answering a request itself"
	}
	if window.Fallbacks > 0 && window.LastFallbackAt.After(at) {
		at, what = window.LastFallbackAt, "without a fallback"
	}
	return at, what
}

// line is a least-squares line through a route's fallbacks per hour:
// its value now and its slope, per hour.
type line struct{ now, slope float64 }

// minTrendHours is how many hours with traffic a trend needs.
const minTrendHours = 3

// fitFallbacks fits a line through the fallbacks of each hour that had
// traffic, each at the middle of its hour; an hour without requests says
// nothing about fallbacks (the route may not have been in fallback mode).
// It reports false with fewer than minTrendHours such hours.
func fitFallbacks(hours []domain.HourCount, now time.Time) (line, bool) {
	var n, sx, sy, sxy, sxx float64
	for _, h := range hours {
		if h.Requests == 0 {
			continue
		}
		x := h.Hour.Add(30 * time.Minute).Sub(now).Hours()
		y := float64(h.Fallbacks)
		n, sx, sy, sxy, sxx = n+1, sx+x, sy+y, sxy+x*y, sxx+x*x
	}
	d := n*sxx - sx*sx
	if n < minTrendHours || d == 0 {
		return line{}, false
	}
	b := (n*sxy - sx*sy) / d
	return line{now: (sy - b*sx) / n, slope: b}, true
}

// dailyFallbacks sums hourly counts into the fallbacks of each of the
// last n 24-hour spans ending now, oldest first.
func dailyFallbacks(hours []domain.HourCount, now time.Time, n int) []int64 {
	days := make([]int64, n)
	for _, h := range hours {
		// An hour belongs to the span its end falls in: the current hour
		// (still running) to the last span.
		ago := int(now.Sub(h.Hour.Add(time.Hour)) / (24 * time.Hour))
		if ago < 0 {
			ago = 0
		}
		if ago < n {
			days[n-1-ago] += h.Fallbacks
		}
	}
	return days
}
