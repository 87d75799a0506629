package upstream

import (
	"net/http"
	"strconv"
	"time"
)

// RetryAfter is the wait a backend's 429 or 503 answer asks for in its
// Retry-After header value (RFC 9110 section 10.2.3: seconds or an HTTP
// date), at now; 0 when it asks for none or the value means nothing.
// Other statuses do not make the header a request to wait.
func RetryAfter(status int, value string, now time.Time) time.Duration {
	if status != http.StatusTooManyRequests && status != http.StatusServiceUnavailable || value == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(value, 10, 32); err == nil {
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(value); err == nil {
		return max(at.Sub(now), 0)
	}
	return 0
}
