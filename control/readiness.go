package control

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// Readiness is what /readyz reports: ready once the configuration is loaded,
// the route flags are known and the listeners are up, not ready again while
// draining for shutdown.
type Readiness struct {
	state atomic.Int32
}

const (
	starting int32 = iota
	ready
	draining
)

// Ready marks the facade ready for traffic, unless it is draining already.
func (r *Readiness) Ready() { r.state.CompareAndSwap(starting, ready) }

// Drain marks the facade as shutting down: load balancers should stop
// sending it new requests.
func (r *Readiness) Drain() { r.state.Store(draining) }

// WriteHealth says whether the state store takes the dual-write
// journal's writes.
type WriteHealth interface {
	// WritesFailing is since when the store refuses them (zero while it
	// takes them) and how many outcomes wait in memory for it.
	WritesFailing() (since time.Time, held int)
}

// readyz answers 200 while the facade takes traffic, saying what is
// degraded, and 503 while it starts, waits for its route flags, or drains.
func (a *admin) readyz(w http.ResponseWriter, _ *http.Request) {
	switch a.Readiness.state.Load() {
	case ready:
		text := a.readyText()
		// Still ready: an expiring admin token is the operators' concern,
		// not the load balancer's.
		for _, warn := range a.Tokens.expiryWarnings(a.now()) {
			text += "warning: " + warn.text + "\n"
		}
		w.Write([]byte(text))
	case draining:
		http.Error(w, "draining", http.StatusServiceUnavailable)
	default:
		select {
		case <-a.Flags.Known():
			http.Error(w, "starting", http.StatusServiceUnavailable)
		default:
			http.Error(w, "waiting for the state store", http.StatusServiceUnavailable)
		}
	}
}

func (a *admin) readyText() string {
	var degraded []string
	if from := a.Flags.SnapshotFrom(); !from.IsZero() {
		degraded = append(degraded, "store unreachable, serving snapshot from "+from.UTC().Format(time.RFC3339))
	} else if ok, since := a.Flags.StoreOK(); !ok {
		text := "state store unreachable since " + since.UTC().Format(time.RFC3339) + "; serving the last known route flags"
		if at := a.Flags.ReadAt(); !at.IsZero() {
			text += "; writes are served on route flags last read at " + at.UTC().Format(time.RFC3339)
		}
		degraded = append(degraded, text)
	}
	if a.Writes != nil {
		if since, held := a.Writes.WritesFailing(); !since.IsZero() {
			degraded = append(degraded, fmt.Sprintf("state store refusing writes since %s; dual writes answer 503, %d outcomes kept in memory until it takes them",
				since.UTC().Format(time.RFC3339), held))
		}
	}
	if len(degraded) == 0 {
		return "ready\n"
	}
	return "ready (degraded: " + strings.Join(degraded, "; ") + ")\n"
}
