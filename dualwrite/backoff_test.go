package dualwrite

import (
	"net/http"
	"testing"
	"time"
)

func TestBackoffDoublesWithJitterUpToTheCap(t *testing.T) {
	for attempts, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second} {
		seen := map[time.Duration]bool{}
		for range 100 {
			got := backoff(attempts, time.Second, time.Minute)
			if got < want/2 || got >= want*3/2 {
				t.Fatalf("attempt %d: %v, want %v ± 50%%", attempts, got, want)
			}
			seen[got] = true
		}
		// Writes that failed together must not all retry together.
		if len(seen) < 50 {
			t.Errorf("attempt %d: %d different delays in 100, want them spread by jitter", attempts, len(seen))
		}
	}
	if got := backoff(50, time.Second, time.Minute); got < 30*time.Second || got >= 90*time.Second {
		t.Errorf("attempt 50: %v, want the one-minute cap ± 50%%", got)
	}
}

func TestOnlyRefusalsAreDeadOnArrival(t *testing.T) {
	for status, want := range map[int]bool{
		400: true, 404: true, 409: true, 422: true,
		408: false, 425: false, 429: false, 500: false, 502: false, 503: false,
	} {
		if got := permanent(status); got != want {
			t.Errorf("permanent(%d) = %v, want %v (%s)", status, got, want, http.StatusText(status))
		}
	}
}

func TestADeleteOfWhatIsAlreadyGoneIsApplied(t *testing.T) {
	if !alreadyGone(http.MethodDelete, 404) || !alreadyGone(http.MethodDelete, 410) {
		t.Error("a DELETE answered 404 or 410 is not taken as applied")
	}
	if alreadyGone(http.MethodPut, 404) {
		t.Error("a PUT answered 404 is taken as applied")
	}
}
