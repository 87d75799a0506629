package shadow

import (
	"cmp"
	"slices"
)

// DriftReport is one field path where modern's answers departed from the
// schema, with what legacy sends there.
type DriftReport struct {
	Path string `json:"path"`
	// Kind is DriftMissing or DriftType; Count how many of modern's
	// answers did so.
	Kind  string `json:"kind"`
	Count int64  `json:"count"`
	// LegacyTypes are the types legacy sent at the path, Presence the
	// share of legacy's enclosing objects that had it (1 at the root and
	// for array elements and map values).
	LegacyTypes []string `json:"legacy_types"`
	Presence    float64  `json:"presence"`
	// ModernTypes are the types modern sent instead (Kind type).
	ModernTypes []string `json:"modern_types,omitempty"`
}

// Drifts lists the schema's drift, most frequent first.
func (s *Schema) Drifts() []DriftReport {
	type place struct{ sh, parent *Shape }
	places := map[string]place{}
	s.Root.walk("", func(path string, sh, parent *Shape) { places[displayPath(path)] = place{sh, parent} })
	var out []DriftReport
	for path, d := range s.Drift {
		p, ok := places[displayPath(path)]
		if !ok {
			continue
		}
		base := DriftReport{Path: displayPath(path), LegacyTypes: p.sh.Types.names(), Presence: 1}
		if p.parent != nil && p.parent.Properties != nil && p.parent.objects() > 0 {
			base.Presence = float64(min(p.sh.Types.total(), p.parent.objects())) / float64(p.parent.objects())
		}
		if d.Missing > 0 {
			r := base
			r.Kind, r.Count = DriftMissing, d.Missing
			out = append(out, r)
		}
		if d.Type > 0 {
			r := base
			r.Kind, r.Count, r.ModernTypes = DriftType, d.Type, d.ModernTypes.names()
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b DriftReport) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Path, b.Path), cmp.Compare(a.Kind, b.Kind))
	})
	return out
}

// names lists the types counted, in typeNames' order.
func (c *typeCounts) names() []string {
	var out []string
	for t, n := range c {
		if n > 0 {
			out = append(out, typeNames[t])
		}
	}
	return out
}
