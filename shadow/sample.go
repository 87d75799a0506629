package shadow

import (
	"context"
	"net/http"
	"time"
)

// RequestCopy is the request a comparison was made for, as sent to both
// backends.
type RequestCopy struct {
	Method string
	// Target is the path and query: /patients/42?full=1.
	Target string
	Header http.Header
	Body   []byte
}

// Sample is a stored mismatch: enough to see what differed and to replay
// the request against either side. Redacted values appear only as their
// hash.
type Sample struct {
	Route         string    `json:"route"`
	At            time.Time `json:"at"`
	PrimaryStatus int       `json:"primary_status"`
	OtherStatus   int       `json:"other_status"`
	Diffs         []Diff    `json:"diffs"`
	// MoreDiffs counts the differences left out of Diffs.
	MoreDiffs   int    `json:"more_diffs,omitempty"`
	CurlPrimary string `json:"curl_primary"`
	CurlOther   string `json:"curl_other"`
}

// NewSample builds the sample of a mismatch on route at time at: the
// result's differences and a curl command for each side, primaryURL and
// otherURL being the backends' base URLs. r is the comparer's Redactor,
// whose hashes the result's redacted values already carry.
func NewSample(route string, at time.Time, req RequestCopy, primaryURL, otherURL string, res Result, r *Redactor) Sample {
	return Sample{
		Route:         route,
		At:            at,
		PrimaryStatus: res.PrimaryStatus,
		OtherStatus:   res.OtherStatus,
		Diffs:         res.Diffs,
		MoreDiffs:     res.More,
		CurlPrimary:   curlCommand(primaryURL, req, r),
		CurlOther:     curlCommand(otherURL, req, r),
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
