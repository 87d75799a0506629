package store

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestTimesAreStoredInTheLayout: the SQLite store's times are written in
// timeLayout exactly, so that their text order stays their time order
// and rows written before compare with rows written now.
func TestTimesAreStoredInTheLayout(t *testing.T) {
	oslo, err := time.LoadLocation("Europe/Oslo")
	if err != nil {
		oslo = time.FixedZone("CET", 3600)
	}
	times := []time.Time{
		{},
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 5, 23, 27, 25, 1000, time.UTC),
		time.Date(2026, 3, 29, 1, 30, 0, 123456789, oslo),
		t0,
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 10000 {
		times = append(times, time.Unix(r.Int64N(253402300800), r.Int64N(1e9)).UTC())
	}
	for _, tm := range times {
		if got, want := formatTime(tm), tm.Format(timeLayout); got != want {
			t.Errorf("formatTime(%v) = %q, want %q", tm, got, want)
		}
	}
}
