package shadow

import (
	"errors"
	"fmt"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"strangler/domain"
)

// NoiseThreshold is in how many double-primary samples a field must differ
// before it is learned as noise, so that a single fluke does not silence a
// real difference.
const NoiseThreshold = 2

// Bounds on what noise learning keeps: documents with data as keys (ids,
// dates) would otherwise grow the candidates without limit.
const (
	maxNoiseCandidates = 4096
	maxNoiseFields     = 256
	maxNoiseDiffs      = 1024
)

// Noise learns, in the manner of Twitter's Diffy, the fields in which two
// answers of the primary to the same request differ (timestamps, request
// ids, random order), and makes its Comparer ignore them. Learned fields
// are paths with [*] for every index, like compare.ignore, or
// "header.Name" or "body" (a non-JSON body that differs every time); the
// status is never learned. Noise is safe for concurrent use.
type Noise struct {
	c         *Comparer
	threshold int
	// set is the comparer's rule set with the learned fields; comparisons
	// read it without locking.
	set atomic.Pointer[ruleSet]

	mu sync.Mutex
	// counts are the candidates: how many samples each not yet learned
	// field differed in.
	counts map[string]int
}

func newNoise(c *Comparer, threshold int) *Noise {
	n := &Noise{c: c, threshold: threshold, counts: map[string]int{}}
	n.set.Store(c.base)
	return n
}

// Learn compares two answers of the primary to the same request, asked,
// and counts the fields that differ, each object key that is data
// written {*} (PublicPath), so that one field stands for every member of
// a map; it returns the fields learned by this call, for the caller to
// persist.
func (n *Noise) Learn(asked Asked, a, b Response) []string {
	if a.Truncated || b.Truncated {
		return nil
	}
	w := n.c.walker()
	w.reset(n.c.red, maxNoiseDiffs, true)
	n.c.compare(w, n.set.Load(), a, b)
	var fields []string
	for _, d := range w.diffs {
		// Parsing gives one spelling per field, whatever escapes its keys had.
		if f, err := parseNoiseField(PublicPath(d.Path, asked)); err == nil && !slices.Contains(fields, f.canon) {
			fields = append(fields, f.canon)
		}
	}
	n.c.release(w)
	if len(fields) == 0 {
		return nil
	}

	n.mu.Lock()
	defer n.mu.Unlock()
	cur := n.set.Load()
	var learned []string
	for _, f := range fields {
		if _, known := slices.BinarySearch(cur.fields, f); known {
			continue
		}
		count, ok := n.counts[f]
		if !ok && len(n.counts) >= maxNoiseCandidates {
			continue
		}
		count++
		if count < n.threshold || len(cur.fields)+len(learned) >= maxNoiseFields {
			n.counts[f] = count
			continue
		}
		delete(n.counts, f)
		learned = append(learned, f)
	}
	if len(learned) > 0 {
		n.publish(append(slices.Clone(cur.fields), learned...))
	}
	return learned
}

// Fields lists the learned fields, sorted, for `strangler diffs --noise`.
func (n *Noise) Fields() []string { return slices.Clone(n.set.Load().fields) }

// Preload adds fields learned earlier, as Fields listed them (from the
// state store, at start or after a reload), a key that reads as data
// written {*} (a replica still on an earlier release, during a rolling
// upgrade, stores such keys). A field that does not parse is skipped and
// reported; the others are loaded.
func (n *Noise) Preload(fields []string) error {
	var errs []error
	var ok []string
	for _, f := range fields {
		nf, err := parseNoiseField(PublicPath(f, Asked{}))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ok = append(ok, nf.canon)
	}
	if len(ok) > 0 {
		n.mu.Lock()
		cur := n.set.Load()
		all := append(slices.Clone(cur.fields), ok...)
		if len(all) > maxNoiseFields {
			errs = append(errs, fmt.Errorf("noise: more than %d fields; the rest are not loaded", maxNoiseFields))
		}
		n.publish(all[:min(len(all), maxNoiseFields)])
		n.mu.Unlock()
	}
	return errors.Join(errs...)
}

// publish swaps in the rule set for fields; n.mu must be held.
func (n *Noise) publish(fields []string) {
	slices.Sort(fields)
	fields = slices.Compact(fields)
	s := &ruleSet{fields: fields, headers: map[string]bool{}}
	rules := slices.Clone(n.c.rules)
	for _, f := range fields {
		nf, _ := parseNoiseField(f) // fields are canonical: they parse
		switch {
		case nf.body:
			s.body = true
		case nf.header != "":
			s.headers[nf.header] = true
		default:
			rules = append(rules, pathRule{path: nf.path, flags: flagIgnore})
		}
	}
	s.paths = buildPaths(rules)
	n.set.Store(s)
}

// noiseField is a parsed noise field.
type noiseField struct {
	// canon is the field as Fields lists it.
	canon string
	// header is a header's canonical name, body the body as a whole, and
	// otherwise path a JSON field path.
	header string
	body   bool
	path   domain.FieldPath
}

// parseNoiseField reads a noise field: "header.Name", "body" or a JSON
// field path, where a top-level key spelt like one of the others is
// quoted: ["status"].
func parseNoiseField(f string) (noiseField, error) {
	switch {
	case f == "body":
		return noiseField{canon: f, body: true}, nil
	case f == "status":
		return noiseField{}, errors.New(`noise: the status is never noise`)
	case strings.HasPrefix(f, "header."):
		name := f[len("header."):]
		if name == "" || strings.ContainsAny(name, " \t\r\n:") {
			return noiseField{}, fmt.Errorf("noise: invalid header field %q", f)
		}
		name = textproto.CanonicalMIMEHeaderKey(name)
		return noiseField{canon: "header." + name, header: name}, nil
	}
	path, err := domain.ParseFieldPath(f)
	if err != nil {
		return noiseField{}, fmt.Errorf("noise: %w", err)
	}
	return noiseField{canon: fieldString(path), path: path}, nil
}

// fieldString writes a JSON field path the way diff paths are written.
func fieldString(p domain.FieldPath) string {
	if p[0].Kind != domain.StepKey || !isReservedRoot([]byte(p[0].Key)) {
		return p.String()
	}
	s := `["` + p[0].Key + `"]`
	if len(p) == 1 {
		return s
	}
	rest := p[1:].String()
	if rest[0] != '[' {
		s += "."
	}
	return s + rest
}
