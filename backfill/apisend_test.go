package backfill

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"strangler/config"
)

// TestWaitUntilReadsANumberByItsValue: a service that says its pending
// jobs are 0.0 (or 0e0) has none, as equals: "0" means; the wait must
// not run out its timeout on the spelling.
func TestWaitUntilReadsANumberByItsValue(t *testing.T) {
	for _, tc := range []struct {
		answer, equals string
		done           bool
	}{
		{`{"pending": 0.0}`, "0", true},
		{`{"pending": 0e3}`, "0", true},
		{`{"pending": 1.50}`, "1.5", true},
		{`{"pending": 10}`, "1", false},
		{`{"pending": "0.0"}`, "0", false}, // a string is not a number
		{`{"state": "done"}`, "done", true},
	} {
		t.Run(tc.answer, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(tc.answer))
			}))
			defer srv.Close()
			field, _, _ := strings.Cut(strings.Trim(tc.answer, "{}"), ":")
			w := &config.WaitUntil{Path: "/admin/jobs", Field: strings.Trim(field, `"`), Equals: tc.equals,
				Every: config.Duration(10 * time.Millisecond), Timeout: config.Duration(300 * time.Millisecond)}
			err := newAPIClient(&config.BackfillAPI{URL: srv.URL, Timeout: config.Duration(time.Second)}).waitUntil(context.Background(), w)
			if done := err == nil; done != tc.done {
				t.Errorf("%s awaiting %s=%s: done %v (%v), want %v", tc.answer, w.Field, tc.equals, done, err, tc.done)
			}
		})
	}
}
