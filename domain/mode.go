package domain

import "fmt"

// Mode is where a route's traffic goes. It is a closed set: an unknown mode
// is a load error, never a request-time surprise.
type Mode string

// The route modes. A read endpoint goes legacy → shadow → fallback →
// modern, a write endpoint legacy → dual-write → modern.
const (
	ModeLegacy    Mode = "legacy"
	ModeShadow    Mode = "shadow"
	ModeFallback  Mode = "fallback"
	ModeDualWrite Mode = "dual-write"
	ModeModern    Mode = "modern"
)

// Modes lists every mode.
var Modes = []Mode{ModeLegacy, ModeShadow, ModeFallback, ModeDualWrite, ModeModern}

// UnmarshalText parses a mode name.
func (m *Mode) UnmarshalText(b []byte) error {
	for _, mode := range Modes {
		if string(b) == string(mode) {
			*m = mode
			return nil
		}
	}
	return fmt.Errorf("unknown mode %q; want legacy, shadow, fallback, dual-write or modern", b)
}

// lifecycle is the migration's stages, earliest first: a read endpoint
// goes legacy → shadow → fallback → modern, a write endpoint legacy →
// dual-write → modern. Modes of one stage are alternatives. Everything
// that asks whether a change moves a route forward or back (the gates,
// the guard, ramps, the status page) asks this order, never its own.
var lifecycle = [...][]Mode{
	{ModeLegacy},
	{ModeShadow, ModeDualWrite},
	{ModeFallback},
	{ModeModern},
}

// Stage is m's place in the lifecycle, 0 for legacy; an unknown mode is
// at 0 too.
func (m Mode) Stage() int {
	for i, modes := range lifecycle {
		for _, x := range modes {
			if x == m {
				return i
			}
		}
	}
	return 0
}

// Last reports whether m is the lifecycle's last stage: nothing comes
// after it.
func (m Mode) Last() bool { return m.Stage() == len(lifecycle)-1 }

// Next is the mode of the lifecycle stage after m's: a write endpoint
// (writes) goes on to dual-write and from there to modern, a read
// endpoint to shadow, then fallback. Next of modern is modern.
func (m Mode) Next(writes bool) Mode {
	if m.Last() {
		return m
	}
	if m == ModeDualWrite {
		return ModeModern
	}
	modes := lifecycle[m.Stage()+1]
	if writes {
		for _, x := range modes {
			if x == ModeDualWrite {
				return x
			}
		}
	}
	return modes[0]
}

// StepBack is where the guard takes a route in mode m whose modern is
// failing: one step back along the lifecycle, to the latest earlier mode
// whose clients do not need modern to answer. From modern that is
// fallback (legacy answers whatever modern fails); from fallback it is
// legacy: the stage in between is skipped because shadow and dual-write
// with primary modern serve modern's answers.
func (m Mode) StepBack() Mode {
	if m.Stage() > ModeFallback.Stage() {
		return ModeFallback
	}
	return ModeLegacy
}

// TakesPercent reports whether m splits traffic by percent: fallback and
// modern send a share of requests to modern, the other modes none.
func (m Mode) TakesPercent() bool { return m == ModeFallback || m == ModeModern }

// FullPercent reads a nil percent as all of the traffic.
func FullPercent(p *float64) float64 {
	if p == nil {
		return 100
	}
	return *p
}

// Later reports whether going from one mode and percent to another, on a
// route whose primary (for shadow and dual-write) is primary, moves the
// route forward: to a later stage, or a larger share of clients answered
// by modern, whichever the stage. modern 10% to fallback 100% is an
// earlier stage, but modern answers ten times the clients (legacy only
// those it fails); fallback to shadow with primary modern has modern
// answer every client with no fallback at all. Neither is a rollback.
func Later(primary Backend, fromMode Mode, fromPct *float64, toMode Mode, toPct *float64) bool {
	if modernShare(primary, toMode, toPct) > modernShare(primary, fromMode, fromPct) {
		return true
	}
	return toMode.Stage() > fromMode.Stage()
}

// modernShare is the percent of a route's clients modern answers in mode
// at percent: the percent in fallback and modern, all of them in shadow
// and dual-write when modern is the primary, none otherwise.
func modernShare(primary Backend, m Mode, percent *float64) float64 {
	switch {
	case m.TakesPercent():
		return FullPercent(percent)
	case (m == ModeShadow || m == ModeDualWrite) && primary == Modern:
		return 100
	}
	return 0
}
