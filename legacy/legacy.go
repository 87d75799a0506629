// Package legacy is the legacy side of a migration as the demo and the
// end-to-end tests run it: the reference patients API over the old
// monolith's data.
package legacy

import (
	"log/slog"
	"net/http"

	"strangler/patients"
)

// DemoPatients is how many patients the demo's legacy backend holds.
const DemoPatients = 100

// NewDemo returns the legacy reference API over an in-memory store holding
// patients 1…DemoPatients.
func NewDemo(log *slog.Logger) http.Handler {
	return patients.NewAPI(patients.NewMemoryStore(DemoPatients), log)
}
