package human

import (
	"testing"
	"time"
)

func TestFormats(t *testing.T) {
	for _, tc := range []struct {
		name, got, want string
	}{
		{"a count below a thousand has no separator", Count(999), "999"},
		{"a count is grouped by thousands", Count(1204), "1,204"},
		{"a large count is grouped by thousands", Count(1234567890), "1,234,567,890"},
		{"a negative count keeps its sign outside the groups", Count(-123456), "-123,456"},
		{"zero is a count", Count(0), "0"},
		{"a zero share is 0%", Share(0), "0%"},
		{"a small share keeps its digits", Share(0.0005), "0.05%"},
		{"a share has three significant digits", Share(0.12345), "12.3%"},
		{"a whole share is 100%", Share(1), "100%"},
		{"no requests per second is 0", PerSecond(0), "0"},
		{"a low rate has two decimals", PerSecond(0.25), "0.25"},
		{"a middling rate has one decimal", PerSecond(42.46), "42.5"},
		{"a high rate has none", PerSecond(1204.4), "1204"},
		{"a few bytes are bytes", Bytes(512), "512 B"},
		{"a kibibyte and a half", Bytes(1536), "1.5 KiB"},
		{"mebibytes", Bytes(12 << 20), "12.0 MiB"},
		{"gibibytes", Bytes(5 << 29), "2.5 GiB"},
		{"whole days are days", Duration(7 * 24 * time.Hour), "7d"},
		{"minutes drop their zero seconds", Duration(30 * time.Minute), "30m"},
		{"hours drop their zero minutes", Duration(2 * time.Hour), "2h"},
		{"hours and minutes", Duration(90 * time.Minute), "1h30m"},
		{"seconds stay exact", Duration(1500 * time.Millisecond), "1.5s"},
		{"a day and a half is not whole days", Duration(36 * time.Hour), "36h"},
		{"an age under a minute is seconds", Age(42 * time.Second), "42s"},
		{"an age under an hour is minutes", Age(12*time.Minute + 30*time.Second), "12m"},
		{"an age under a day is hours and minutes", Age(3*time.Hour + 12*time.Minute + 5*time.Second), "3h12m"},
		{"an age of days is days and hours", Age(51*time.Hour + 30*time.Minute), "2d3h"},
		{"an age from a clock ahead is 0s", Age(-5 * time.Second), "0s"},
		{"part of a day is hours, rounded up", Days(0.25), "6h"},
		{"whole days", Days(2), "2d"},
		{"days and hours", Days(2.2), "2d 5h"},
		{"an instant is in UTC to the second", Time(time.Date(2026, 3, 31, 10, 0, 5, 0, time.FixedZone("CEST", 2*3600))), "2026-03-31 08:00:05 UTC"},
		{"an instant to the minute drops the seconds", Minute(time.Date(2026, 3, 31, 8, 0, 59, 0, time.UTC)), "2026-03-31 08:00 UTC"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}
