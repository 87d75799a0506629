package main

import (
	"testing"
	"time"
)

func TestFmtTimeSaysHowLongAgoOrUntil(t *testing.T) {
	now := time.Date(2026, 12, 6, 15, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{now.Add(-90 * time.Second), "2026-12-06 14:58:30 UTC (1m ago)"},
		// A pending change request's expiry: it was shown as "(0s ago)".
		{now.Add(23*time.Hour + 59*time.Minute), "2026-12-07 14:59:00 UTC (in 23h59m)"},
	} {
		if got := fmtTime(tc.at, now); got != tc.want {
			t.Errorf("fmtTime(%v) = %q, want %q", tc.at, got, tc.want)
		}
	}
}
