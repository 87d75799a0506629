package router

import (
	"log/slog"
	"sync"
	"time"
)

// maxShadowHold bounds how long a backend's Retry-After stops shadow
// copies to it: a copy is optional load, but a day of no comparisons
// because of one odd header would go unnoticed.
const maxShadowHold = 5 * time.Minute

// holdOff is, per backend, until when it asked for no shadow copies
// (Retry-After on a 429 or 503 answer to one). It outlives reloads: the
// router keeps it, every table reads it.
type holdOff struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// hold stops copies to backend for wait (up to maxShadowHold) from now,
// logging once per hold, not once per answer.
func (h *holdOff) hold(log *slog.Logger, backend string, status int, now time.Time, wait time.Duration) {
	until := now.Add(min(wait, maxShadowHold))
	h.mu.Lock()
	was := h.until[backend]
	if until.After(was) {
		h.until[backend] = until
	}
	h.mu.Unlock()
	if !now.Before(was) {
		log.Warn("a shadow backend asked for no requests for a while (Retry-After); shadow copies to it are dropped until then",
			"backend", backend, "status", status, "until", until.UTC())
	}
}

// held reports whether copies to backend are held back at now.
func (h *holdOff) held(backend string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return now.Before(h.until[backend])
}
