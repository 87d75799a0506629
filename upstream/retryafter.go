package upstream

import (
	"errors"
	"net/http"
	"strconv"
	"sync"
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
	// A number of seconds past 32 bits (a time in milliseconds given as
	// seconds, say) still asks for a long wait: it is read as the longest
	// one, which each caller bounds, not as no wait at all.
	if secs, err := strconv.ParseUint(value, 10, 32); err == nil || errors.Is(err, strconv.ErrRange) {
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(value); err == nil {
		return max(at.Sub(now), 0)
	}
	return 0
}

// Holds keeps, per backend, until when it asked for no requests
// (RetryAfter), for the senders that honour it: dual-write deliveries and
// shadow copies. The zero value holds nothing back.
type Holds struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// Hold holds requests to backend back until now+wait, unless they already
// are for longer. It returns the end of the hold, and whether a hold began
// (none ran at now), for the caller to log once per hold rather than once
// per answer of the requests that were under way.
func (h *Holds) Hold(backend string, now time.Time, wait time.Duration) (until time.Time, began bool) {
	until = now.Add(wait)
	h.mu.Lock()
	defer h.mu.Unlock()
	was := h.until[backend]
	began = !now.Before(was)
	if !until.After(was) {
		return was, began
	}
	if h.until == nil {
		h.until = map[string]time.Time{}
	}
	h.until[backend] = until
	return until, began
}

// Held returns until when requests to backend are held back, and whether
// they are at now.
func (h *Holds) Held(backend string, now time.Time) (time.Time, bool) {
	h.mu.Lock()
	until := h.until[backend]
	h.mu.Unlock()
	return until, now.Before(until)
}
