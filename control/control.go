// Package control owns the admin listener and the control plane: route
// flags and their overrides, the audit log, gates and the guard, the
// retirement report, the repair queue and mismatch samples as operators
// see them, health, readiness and the status page.
package control

import (
	"sync/atomic"
)

// Readiness is what /readyz reports: ready once the configuration is loaded
// and the listeners are up, not ready again while draining for shutdown.
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
