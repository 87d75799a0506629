package shadow

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"strangler/config"
	"strangler/domain"
	"strangler/phi"
)

// Comparer compares the primary's and the other backend's answers to the
// same request under one route's compare section. It is safe for
// concurrent use; build one per route and configuration.
type Comparer struct {
	// headers are the canonical names of the compared headers.
	headers []string
	// rules are the configured field paths; base is them compiled, with
	// nothing learned as noise.
	rules   []pathRule
	base    *ruleSet
	red     *Redactor
	maxBody int64
	// noise is nil unless compare.noise is on.
	noise   *Noise
	walkers sync.Pool
	// differing counts the comparisons in a row whose JSON bodies
	// differed. While a route's answers keep differing (a field modern
	// adds and no rule ignores yet), the single pass (matchDoc) only finds
	// what the trees then find again, so it is tried only now and then.
	differing atomic.Uint32
	// treesOnly turns off matchDoc's single pass, for tests that check it
	// decides as the trees do.
	treesOnly bool
}

// While passAfter or more comparisons in a row found the JSON bodies
// different, the single pass is tried once in every passEvery: often
// enough to see within a few dozen answers that they are equal again.
const (
	passAfter = 8
	passEvery = 16
)

// tryPass reports whether the single pass is worth trying.
func (c *Comparer) tryPass() bool {
	n := c.differing.Load()
	return !c.treesOnly && (n < passAfter || n%passEvery == 0)
}

// bodiesDiffered records whether the JSON bodies of a comparison
// differed, for tryPass.
func (c *Comparer) bodiesDiffered(differed bool) {
	switch {
	case differed:
		c.differing.Add(1)
	case c.differing.Load() != 0: // a store only when needed: the field is shared
		c.differing.Store(0)
	}
}

// ruleSet is what a comparison ignores: the configured paths plus, once
// learned, the noisy ones. It is immutable; learning swaps in a new one.
type ruleSet struct {
	paths *pathNode
	// headers and body are noise outside the JSON body.
	headers map[string]bool
	body    bool
	// fields are the noise fields, sorted.
	fields []string
}

// NewComparer builds the comparer for a compare section. h is the keyed
// hash that stands for values in samples, shared by every route.
func NewComparer(c config.Compare, h *phi.Hasher) (*Comparer, error) {
	if errs := c.Validate(); len(errs) > 0 {
		msgs := make([]error, len(errs))
		for i, e := range errs {
			msgs[i] = fmt.Errorf("compare.%s: %s", e.Field, e.Msg)
		}
		return nil, errors.Join(msgs...)
	}
	c = c.Effective()
	cmp := &Comparer{maxBody: int64(c.MaxBody)}
	cmp.walkers.New = func() any { return new(walker) }
	for _, h := range c.Headers {
		name := textproto.CanonicalMIMEHeaderKey(h)
		if !slices.Contains(cmp.headers, name) {
			cmp.headers = append(cmp.headers, name)
		}
	}
	for _, list := range []struct {
		paths []string
		flags pathFlags
	}{{c.Ignore, flagIgnore}, {c.Unordered, flagUnordered}, {c.Redact, flagRedact}, {c.KeepValues, flagKeep}} {
		for _, s := range list.paths {
			if _, header := domain.KeptHeader(s); header && list.flags == flagKeep {
				continue // a response header, not a JSON field
			}
			p, _ := domain.ParseFieldPath(s) // validated above
			cmp.rules = append(cmp.rules, pathRule{path: p, flags: list.flags})
		}
	}
	cmp.base = &ruleSet{paths: buildPaths(cmp.rules)}
	cmp.red = newRedactor(h, c, cmp.rules)
	if c.Noise {
		cmp.noise = newNoise(cmp, NoiseThreshold)
	}
	return cmp, nil
}

// Redactor is the comparer's redaction, for building samples.
func (c *Comparer) Redactor() *Redactor { return c.red }

// Noise is the comparer's noise learner, or nil when compare.noise is off.
func (c *Comparer) Noise() *Noise { return c.noise }

// Compare compares the primary's answer with the other's. Status comes
// first, then the selected headers, then the body: JSON bodies (both
// Content-Types application/json or +json) structurally, anything else by
// bytes. Fields learned as noise are ignored.
func (c *Comparer) Compare(primary, other Response) Result {
	w := c.walker()
	defer c.release(w)
	w.reset(c.red, MaxDiffs, false)
	tooLarge := c.compare(w, c.current(), primary, other)
	r := Result{PrimaryStatus: primary.Status, OtherStatus: other.Status, Diffs: w.diffs, More: w.more}
	switch {
	case len(r.Diffs) > 0:
		r.Outcome = Mismatch
	case tooLarge:
		r.Outcome = TooLarge
	}
	return r
}

// current is the rule set in force: the configured paths and the noise
// learned so far.
func (c *Comparer) current() *ruleSet {
	if c.noise != nil {
		return c.noise.set.Load()
	}
	return c.base
}

func (c *Comparer) walker() *walker { return c.walkers.Get().(*walker) }

// maxPooledNodes keeps a walker that once parsed a huge body from pinning
// that much memory in the pool.
const maxPooledNodes = 1 << 16

func (c *Comparer) release(w *walker) {
	if cap(w.a.nodes) > maxPooledNodes || cap(w.b.nodes) > maxPooledNodes {
		return
	}
	// Drop the references into the bodies and the reported diffs.
	w.a.src, w.b.src, w.diffs, w.red = nil, nil, nil, nil
	c.walkers.Put(w)
}

// compare records every difference in w and reports whether a body was
// too large to compare. Status and headers are compared even then: a
// status that differs is a mismatch whatever the bodies hold.
func (c *Comparer) compare(w *walker, s *ruleSet, p, o Response) (tooLarge bool) {
	if p.Status != o.Status {
		w.note("status", strconv.Itoa(p.Status), strconv.Itoa(o.Status))
	}
	for _, name := range c.headers {
		pv, ov := p.Header[name], o.Header[name]
		if slices.Equal(pv, ov) || s.headers[name] {
			continue
		}
		w.note("header."+name, c.red.headerValue(name, pv), c.red.headerValue(name, ov))
	}
	if p.Truncated || o.Truncated {
		return true
	}
	if s.body {
		return false
	}
	if bytes.Equal(p.Body, o.Body) && slices.Equal(p.Header["Content-Encoding"], o.Header["Content-Encoding"]) {
		return false // the common case: nothing to decode or parse
	}
	pb, perr := DecodeBody(p.Header, p.Body, c.maxBody)
	ob, oerr := DecodeBody(o.Header, o.Body, c.maxBody)
	if errors.Is(perr, errBodyTooLarge) || errors.Is(oerr, errBodyTooLarge) {
		return true
	}
	if perr == nil && oerr == nil && bytes.Equal(pb, ob) {
		return false
	}
	if perr == nil && oerr == nil && isJSON(p.Header) && isJSON(o.Header) {
		ea := w.a.parse(pb)
		if ea == nil && c.tryPass() && w.matchDoc(ob, s.paths) {
			c.bodiesDiffered(false)
			return false // the common case: equal, found in one pass over ob
		}
		eb := w.b.parse(ob)
		if ea == nil && eb == nil {
			c.bodiesDiffered(!w.diff(0, 0, s.paths))
			return false
		}
		c.bodiesDiffered(true)
		perr, oerr = ea, eb
	}
	w.note("body", c.bodySummary(pb, perr), c.bodySummary(ob, oerr))
	return false
}

// note records a difference outside the JSON body.
func (w *walker) note(path, primary, other string) {
	if len(w.diffs) >= w.limit {
		w.more++
		return
	}
	d := Diff{Path: path}
	if !w.learn {
		d.Primary, d.Other = primary, other
	}
	w.diffs = append(w.diffs, d)
}

// bodySummary stands for a body compared as bytes: its size and keyed
// hash, never its content, which may be anything.
func (c *Comparer) bodySummary(body []byte, err error) string {
	var b []byte
	if err != nil {
		b = append(b, err.Error()...)
		b = append(b, ", "...)
	}
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, " bytes"...)
	if len(body) > 0 {
		b = append(b, ", {"...)
		b = c.red.h.AppendHash(b, body)
		b = append(b, '}')
	}
	return string(appendJSONString(nil, string(b)))
}

// isJSON reports whether the Content-Type is application/json or a
// +json type such as application/problem+json.
func isJSON(h http.Header) bool {
	v := h["Content-Type"]
	if len(v) == 0 {
		return false
	}
	mt, _, _ := strings.Cut(v[0], ";")
	mt = strings.TrimSpace(mt)
	return strings.EqualFold(mt, "application/json") ||
		len(mt) > 5 && strings.EqualFold(mt[len(mt)-5:], "+json") && strings.Contains(mt, "/")
}

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			dst = append(dst, '\\', byte(r))
		case r == '\n':
			dst = append(dst, '\\', 'n')
		case r == '\r':
			dst = append(dst, '\\', 'r')
		case r == '\t':
			dst = append(dst, '\\', 't')
		case r < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
		default:
			dst = utf8.AppendRune(dst, r)
		}
	}
	return append(dst, '"')
}
