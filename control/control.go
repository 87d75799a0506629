// Package control owns the admin listener and the control plane: route
// flags and their overrides, the audit log, gates and the guard, the
// retirement report, the repair queue and mismatch samples as operators
// see them, health, readiness and the status page.
package control
