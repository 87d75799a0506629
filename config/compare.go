package config

import (
	"fmt"

	"strangler/domain"
)

// Compare is a shadow route's compare section: what of the two responses is
// compared, what is ignored or hashed, and how much shadowing may cost.
//
// Field paths (ignore, unordered, redact) name places in a JSON body from
// its root: dot-separated object keys (address.city), [*] for every element
// of an array (items[*].etag), [3] for one element, and ["a.b"] for a key
// that holds a dot, a bracket, a quote or a space (the brackets take a JSON
// string). A path that starts at a root array starts with a bracket:
// [*].id. Paths are anchored at the root: etag names the top-level key
// only, not every etag in the document.
type Compare struct {
	// Headers are the response headers compared, case-insensitive names.
	// Other headers are not compared.
	Headers []string `yaml:"headers,omitempty"`
	// Ignore are JSON field paths left out of the comparison.
	Ignore []string `yaml:"ignore,omitempty"`
	// Unordered are paths of JSON arrays compared as multisets: the same
	// elements, each as often, in any order.
	Unordered []string `yaml:"unordered,omitempty"`
	// KeepValues are the JSON field paths whose values a mismatch sample
	// shows in clear; every other value is shown only as its keyed hash.
	// Name only fields known to hold no patient data: status codes, enums,
	// counts. "header.Name" names a compared response header; a JSON key
	// "header" at the root is written ["header"].
	KeepValues []string `yaml:"keep_values,omitempty"`
	// Redact are JSON field paths whose values are hashed whole in
	// mismatch samples and curl commands, even below a keep_values path.
	// A path that is a single key also names a header, whose value a curl
	// command then shows hashed.
	Redact []string `yaml:"redact,omitempty"`
	// Maps are JSON field paths of objects whose keys are data, such as a
	// map keyed by patient name: a learned response schema keeps none of
	// their keys and learns their values as one. Objects whose keys look
	// like record numbers, ids, dates or e-mail addresses, or that have
	// many distinct keys, are found without being listed.
	Maps []string `yaml:"maps,omitempty"`
	// Noise learns the fields in which two answers of the primary to the
	// same request differ (timestamps, request ids) and ignores them.
	Noise bool `yaml:"noise,omitempty"`
	// Sample is the share of requests shadowed, from 0 to 1. Nil means 1.
	Sample *float64 `yaml:"sample,omitempty"`
	// MaxInflight bounds the shadow requests running at once; a request
	// arriving when the bound is reached is not shadowed and is counted as
	// dropped. 0 means DefaultCompareMaxInflight.
	MaxInflight int `yaml:"max_inflight,omitempty"`
	// MaxBody caps the bytes of each response kept for the comparison; a
	// larger response is counted as too large, never compared in part.
	// 0 means DefaultCompareMaxBody.
	MaxBody ByteSize `yaml:"max_body,omitempty"`
}

// Defaults of the compare section.
const (
	DefaultCompareSample      = 1.0
	DefaultCompareMaxInflight = 64
	DefaultCompareMaxBody     = 1 << 20
)

// Effective returns the section with its defaults filled in.
func (c Compare) Effective() Compare {
	if c.Sample == nil {
		s := DefaultCompareSample
		c.Sample = &s
	}
	if c.MaxInflight == 0 {
		c.MaxInflight = DefaultCompareMaxInflight
	}
	if c.MaxBody == 0 {
		c.MaxBody = DefaultCompareMaxBody
	}
	return c
}

// Validate checks the section. Each Error's Field is relative to the
// section (ignore[1], sample) and carries no file or line: the caller
// places it, for example with errorAt("routes[2].compare."+e.Field, …).
func (c *Compare) Validate() Errors {
	var errs Errors
	add := func(field, format string, args ...any) {
		errs = append(errs, Error{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	for i, h := range c.Headers {
		if !isToken(h) {
			add(fmt.Sprintf("headers[%d]", i), "invalid header name %q", h)
		}
	}
	for _, list := range []struct {
		name  string
		paths []string
	}{{"ignore", c.Ignore}, {"unordered", c.Unordered}, {"redact", c.Redact}, {"maps", c.Maps}} {
		for i, p := range list.paths {
			if _, err := domain.ParseFieldPath(p); err != nil {
				add(fmt.Sprintf("%s[%d]", list.name, i), "%v", err)
			}
		}
	}
	for i, p := range c.KeepValues {
		if name, ok := domain.KeptHeader(p); ok {
			if !isToken(name) {
				add(fmt.Sprintf("keep_values[%d]", i), "invalid header name %q", name)
			}
		} else if _, err := domain.ParseFieldPath(p); err != nil {
			add(fmt.Sprintf("keep_values[%d]", i), "%v", err)
		}
	}
	if c.Sample != nil && !(*c.Sample >= 0 && *c.Sample <= 1) {
		add("sample", "invalid share %v; want a number from 0 to 1", *c.Sample)
	}
	if c.MaxInflight < 0 {
		add("max_inflight", "must be at least 1 (leave it out for %d)", DefaultCompareMaxInflight)
	}
	return errs
}
