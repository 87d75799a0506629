package shadow

import (
	"context"
	"net/http"
	"time"

	"strangler/phi"
)

// RequestCopy is the request a comparison was made for, as sent to both
// backends.
type RequestCopy struct {
	Method string
	// Target is the path and query: /patients/42?full=1.
	Target string
	// Pattern is the route's path pattern (/patients/{id}): a sample shows
	// the words of the path it spells out, and only placeholders for the
	// rest.
	Pattern string
	Header  http.Header
	Body    []byte
}

// Sample is a stored mismatch: enough to see what differed, to tell the
// same mismatch on the same entity when it comes again, and to replay the
// request against either side once its placeholders are filled in. It
// holds no value of the request or the answers in clear, except the two
// statuses and the values at compare.keep_values paths: each other value,
// path parameter and query value is a placeholder holding its keyed hash
// ({h:3f9a…}, {id:h:3f9a…}), and each object key that is data is {*} in
// the diff paths (PublicPath).
type Sample struct {
	Route  string    `json:"route"`
	At     time.Time `json:"at"`
	Method string    `json:"method,omitempty"`
	// Target is the request's path and query with placeholders:
	// /patients/{id:h:3f9a…}/photos?full={h:…}.
	Target        string `json:"target,omitempty"`
	PrimaryStatus int    `json:"primary_status"`
	OtherStatus   int    `json:"other_status"`
	Diffs         []Diff `json:"diffs"`
	// MoreDiffs counts the differences left out of Diffs.
	MoreDiffs   int    `json:"more_diffs,omitempty"`
	CurlPrimary string `json:"curl_primary"`
	CurlOther   string `json:"curl_other"`
	// Unreadable, when set, says why the rest of a stored sample cannot be
	// shown: it was encrypted with a key that is no longer configured.
	Unreadable string `json:"unreadable,omitempty"`
}

// NewSample builds the sample of a mismatch on route at time at: the
// result's differences and a curl command for each side, primaryURL and
// otherURL being the backends' base URLs. r is the comparer's Redactor,
// whose placeholders the result's values already are.
func NewSample(route string, at time.Time, req RequestCopy, primaryURL, otherURL string, res Result, r *Redactor) Sample {
	target := req.Target
	if target != "*" {
		target = r.h.Target(req.Pattern, target)
	}
	asked := Asked{Pattern: req.Pattern, Target: req.Target}
	params := phi.Params(req.Pattern, req.Target)
	diffs := make([]Diff, len(res.Diffs))
	for i, d := range res.Diffs {
		diffs[i] = r.publicDiff(d, asked, params)
	}
	return Sample{
		Route:         route,
		At:            at,
		Method:        req.Method,
		Target:        target,
		PrimaryStatus: res.PrimaryStatus,
		OtherStatus:   res.OtherStatus,
		Diffs:         diffs,
		MoreDiffs:     res.More,
		CurlPrimary:   curlCommand(primaryURL, req, target, params, r),
		CurlOther:     curlCommand(otherURL, req, target, params, r),
	}
}

// SampleStore keeps mismatch samples: bounded per route, the oldest
// dropped first. The state store implements it; MemorySamples stands in
// when there is none.
type SampleStore interface {
	// Add stores a sample.
	Add(ctx context.Context, s Sample) error
	// List returns up to limit samples of route, newest first; all routes
	// for route "", and every sample for a limit of 0 or less.
	List(ctx context.Context, route string, limit int) ([]Sample, error)
}
