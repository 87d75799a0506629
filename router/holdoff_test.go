package router

import (
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// TestShadowCopiesWaitWhatTheOtherSideAsks: modern, the other side of a
// shadow route, answers a copy 503 with Retry-After: 120 (overloaded, in
// maintenance). For those 120 s no copy is sent to it (each is counted
// as dropped, the clients still get legacy's answers); then copies go
// again. Copies are load modern can do without: 20 requests sent 20
// copies into the overload before.
func TestShadowCopiesWaitWhatTheOtherSideAsks(t *testing.T) {
	legacy := newBackend(t, jsonAnswer(`{"id":7}`))
	var busy atomic.Bool
	busy.Store(true)
	modern := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if busy.Load() {
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		jsonAnswer(`{"id":7}`)(w, r)
	})
	clock := testkit.NewClock(time.Now())
	f := serveConfig(t, testConfig(t, legacy.URL, modern.URL, "", `
  - {name: photos, match: "GET /patients/{id}/photos", mode: shadow}`), func(d *Deps) { d.Now = clock.Now })
	if resp, _ := f.get(t, "/patients/7/photos"); resp.StatusCode != 200 {
		t.Fatalf("client got %d, want legacy's 200", resp.StatusCode)
	}
	f.comparisons(t, "photos", 1)

	const during = 20
	for range during {
		clock.Advance(5 * time.Second)
		if resp, _ := f.get(t, "/patients/7/photos"); resp.StatusCode != 200 {
			t.Fatalf("client got %d while modern asked to wait, want legacy's 200", resp.StatusCode)
		}
	}
	got := f.comparisons(t, "photos", 1+during)
	if n := modern.hits(); n != 1 || got["dropped"] != during {
		t.Errorf("in the 100 s after modern asked for 120: %d copies reached it and %v were counted dropped, want 1 and %d", n, got["dropped"], during)
	}
	if lines := f.logLines(t, "a shadow backend asked for no requests for a while (Retry-After); shadow copies to it are dropped until then"); len(lines) != 1 {
		t.Errorf("%d log lines about the wait, want 1", len(lines))
	}

	busy.Store(false)
	clock.Advance(21 * time.Second)
	f.get(t, "/patients/7/photos")
	if got := f.comparisons(t, "photos", 2+during); got["match"] != 1 || modern.hits() != 2 {
		t.Errorf("after the wait: comparisons %v and %d copies at modern, want the copy sent and matched", got, modern.hits())
	}
}

// TestAShadowBackendsWaitIsCappedAtFiveMinutes: a Retry-After of an hour
// (or a date far ahead) stops copies to it for five minutes at most, so
// that one answer cannot turn the comparison off for the day.
func TestAShadowBackendsWaitIsCappedAtFiveMinutes(t *testing.T) {
	legacy := newBackend(t, jsonAnswer(`{"id":7}`))
	var busy atomic.Bool
	busy.Store(true)
	modern := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if busy.Swap(false) {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		jsonAnswer(`{"id":7}`)(w, r)
	})
	clock := testkit.NewClock(time.Now())
	f := serveConfig(t, testConfig(t, legacy.URL, modern.URL, "", `
  - {name: photos, match: "GET /patients/{id}/photos", mode: shadow}`), func(d *Deps) { d.Now = clock.Now })
	f.get(t, "/patients/7/photos")
	f.comparisons(t, "photos", 1)
	clock.Advance(5*time.Minute + time.Second)
	f.get(t, "/patients/7/photos")
	if got := f.comparisons(t, "photos", 2); got["match"] != 1 || modern.hits() != 2 {
		t.Errorf("5 min after modern asked for an hour: comparisons %v and %d copies at modern, want the copy sent and matched", got, modern.hits())
	}
}
