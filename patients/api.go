package patients

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
)

// NewAPI returns the reference API over store.
func NewAPI(store Store, log *slog.Logger) http.Handler {
	a := &api{store: store, log: log}
	r := chi.NewRouter()
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	r.Get("/patients", a.list)
	r.Post("/patients", a.create)
	r.Get("/patients/{id}", a.get)
	r.Put("/patients/{id}", a.update)
	r.Delete("/patients/{id}", a.delete)
	return r
}

type api struct {
	store Store
	log   *slog.Logger
}

const (
	defaultPage = 50
	maxPage     = 500
)

func (a *api) list(w http.ResponseWriter, r *http.Request) {
	after, err := queryInt(r, "after", 0)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	limit, err := queryInt(r, "limit", defaultPage)
	if err != nil || limit < 1 || limit > maxPage {
		writeError(w, http.StatusBadRequest, "limit must be a number from 1 to 500")
		return
	}
	ps, err := a.store.List(r.Context(), after, int(limit))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if ps == nil {
		ps = []Patient{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"patients": ps})
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	p, err := a.store.Get(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (a *api) create(w http.ResponseWriter, r *http.Request) {
	p, ok := readPatient(w, r)
	if !ok {
		return
	}
	p, err := a.store.Create(r.Context(), p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/patients/"+strconv.FormatInt(p.ID, 10))
	writeJSON(w, http.StatusCreated, p)
}

func (a *api) update(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	p, ok := readPatient(w, r)
	if !ok {
		return
	}
	p.ID = id
	p, err := a.store.Update(r.Context(), p)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

func (a *api) delete(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if err := a.store.Delete(r.Context(), id); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// fail answers a store error: 404 for a missing patient, 500 otherwise,
// with the detail in the log rather than the response.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrNotFound) {
		writeError(w, http.StatusNotFound, ErrNotFound.Error())
		return
	}
	a.log.ErrorContext(r.Context(), "store failed", "method", r.Method, "error", err)
	writeError(w, http.StatusInternalServerError, "internal error")
}

func readPatient(w http.ResponseWriter, r *http.Request) (Patient, bool) {
	var p Patient
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		writeError(w, http.StatusBadRequest, "invalid patient JSON: "+err.Error())
		return p, false
	}
	if err := p.validate(); err != nil {
		writeError(w, http.StatusUnprocessableEntity, err.Error())
		return p, false
	}
	return p, true
}

func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id < 1 {
		writeError(w, http.StatusNotFound, ErrNotFound.Error())
		return 0, false
	}
	return id, true
}

func queryInt(r *http.Request, name string, def int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, errors.New(name + " must be a whole number")
	}
	return n, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
