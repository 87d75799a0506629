package upstream

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfterIsReadOnlyFromAnAnswerThatAsksToWait(t *testing.T) {
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		status int
		value  string
		want   time.Duration
	}{
		{503, "30", 30 * time.Second},
		{429, "0", 0},
		{429, now.Add(time.Minute).Format(http.TimeFormat), time.Minute},
		{503, now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{503, "-5", 0},
		{503, "soon", 0},
		{503, "", 0},
		{500, "30", 0},
		{502, "30", 0},
	} {
		if got := RetryAfter(c.status, c.value, now); got != c.want {
			t.Errorf("RetryAfter(%d, %q) = %v, want %v", c.status, c.value, got, c.want)
		}
	}
}
