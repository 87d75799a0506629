package control

import "strangler/config"

// lifecycle is the migration's stages, earliest first: a read endpoint
// goes legacy → shadow → fallback → modern, a write endpoint legacy →
// dual-write → modern. Modes of one stage are alternatives. Everything
// that asks whether a change moves a route forward or back (the gates,
// the guard, the status page) asks this order, never its own.
var lifecycle = [...][]config.Mode{
	{config.ModeLegacy},
	{config.ModeShadow, config.ModeDualWrite},
	{config.ModeFallback},
	{config.ModeModern},
}

// stage is m's place in the lifecycle.
func stage(m config.Mode) int {
	for i, modes := range lifecycle {
		for _, x := range modes {
			if x == m {
				return i
			}
		}
	}
	return 0
}

// fullPercent reads a nil percent as all of the traffic.
func fullPercent(p *float64) float64 {
	if p == nil {
		return 100
	}
	return *p
}

// later reports whether going from one mode and percent to another moves
// the route forward: to a later stage, or more traffic to modern within
// fallback or modern.
func later(fromMode config.Mode, fromPct *float64, toMode config.Mode, toPct *float64) bool {
	if stage(toMode) != stage(fromMode) {
		return stage(toMode) > stage(fromMode)
	}
	return fullPercent(toPct) > fullPercent(fromPct)
}

// stepBack is where the guard takes a route in mode m whose modern is
// failing: one step back along the lifecycle, to the latest earlier mode
// whose clients do not need modern to answer. From modern that is
// fallback (legacy answers whatever modern fails); from fallback it is
// legacy: the stage in between is skipped because shadow and dual-write
// with primary modern serve modern's answers.
func stepBack(m config.Mode) config.Mode {
	if stage(m) > stage(config.ModeFallback) {
		return config.ModeFallback
	}
	return config.ModeLegacy
}
