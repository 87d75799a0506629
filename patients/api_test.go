package patients_test

import (
	"io"
	"log/slog"
	"testing"

	"strangler/patients"
	"strangler/patients/patientstest"
)

func TestMemoryBackendKeepsTheContract(t *testing.T) {
	s := patients.NewMemoryStore(0, 1)
	h := patients.NewAPI(patients.Backend{
		Patients: s, Photos: s, Idempotency: patients.NewMemoryIdempotency(), KeepPrimaryID: true,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	patientstest.Run(t, h, patientstest.Features{Idempotent: true, KeepsPrimaryID: true})
}
