// Package modern is the modern side of a migration as the demo and the
// end-to-end tests run it: the reference patients API over the new
// service's data.
package modern

import (
	"log/slog"
	"net/http"

	"strangler/patients"
)

// DemoPatients is how many patients the demo's modern backend holds: fewer
// than legacy, so that reading a later one visibly falls back.
const DemoPatients = 60

// NewDemo returns the modern reference API over an in-memory store holding
// patients 1…DemoPatients.
func NewDemo(log *slog.Logger) http.Handler {
	return patients.NewAPI(patients.NewMemoryStore(DemoPatients), log)
}
