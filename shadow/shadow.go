// Package shadow owns the comparison behind the shadow mode: given the
// primary's and the other backend's answers to the same request, it says
// whether they match and, if not, exactly where they differ. It also owns
// the parts around a comparison: learning noisy fields, building mismatch
// samples that hold hashes in place of values and curl commands with
// placeholders, storing samples,
// capturing response bodies up to a cap, sampling, and the bounded pool the
// shadow calls run in.
//
// The package sees only pairs of requests and responses: it knows nothing
// of routes, upstreams or backends, which the router wires in.
package shadow

import (
	"net/http"
	"strconv"
)

// Response is one backend's answer as the comparison sees it.
type Response struct {
	Status int
	Header http.Header
	// Body is the captured body, at most the route's max_body bytes, as
	// the backend sent it (a gzip or deflate Content-Encoding is undone
	// before comparing).
	Body []byte
	// Truncated reports that the body was longer than the capture cap, so
	// Body holds only its start and is never compared.
	Truncated bool
}

// Outcome is the verdict of one comparison. Its String is the result label
// of strangler_shadow_comparisons_total.
type Outcome uint8

// The outcomes of a comparison.
const (
	// Match: status, selected headers and body are equal.
	Match Outcome = iota
	// Mismatch: something compared differs; Result.Diffs says what.
	Mismatch
	// TooLarge: a body exceeded the capture cap and status and headers
	// were equal, so nothing can be said about the body.
	TooLarge
)

// String returns the outcome's label: match, mismatch or too_large.
func (o Outcome) String() string {
	switch o {
	case Match:
		return "match"
	case Mismatch:
		return "mismatch"
	case TooLarge:
		return "too_large"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// MarshalText writes the outcome as its label.
func (o Outcome) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

// Result is what a comparison found.
type Result struct {
	Outcome       Outcome
	PrimaryStatus int
	OtherStatus   int
	// Diffs are the first differences found, in document order; at most
	// MaxDiffs of them.
	Diffs []Diff
	// More counts the differences found beyond those in Diffs.
	More int
}

// MaxDiffs bounds Result.Diffs, so that a response that differs
// everywhere yields a readable sample of bounded size.
const MaxDiffs = 20

// Diff is one difference between the two responses.
type Diff struct {
	// Path says where: "status", "header.Content-Type", "body" for a body
	// compared as bytes (or JSON that differs at its root), or a JSON
	// field path like items[2].name. A JSON key that would read like one
	// of the others at the root is quoted: ["status"].
	Path string `json:"path"`
	// Primary and Other are the two values rendered compactly as JSON in
	// which every value not kept (compare.keep_values) is a placeholder
	// holding its keyed hash: "{h:3f9a…}" for a string, {h:3f9a…} for
	// anything else, so objects and arrays keep their shape; "" when the
	// value is absent on that side. A status is shown as it is. A long
	// value is cut after maxValueLen bytes and ends with "…".
	Primary string `json:"primary,omitempty"`
	Other   string `json:"other,omitempty"`
}
