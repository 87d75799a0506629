package patients

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
)

// Backend is what the API serves from.
type Backend struct {
	Patients Store
	Photos   PhotoStore
	// Idempotency, if set, makes writes carrying an Idempotency-Key apply
	// once; nil ignores the header.
	Idempotency Idempotency
	// KeepPrimaryID makes a create carrying X-Strangler-Primary-Id (sent by
	// the facade to a dual-write secondary) store the new row under that
	// id, so clients see the same id on both sides; false ignores it.
	KeepPrimaryID bool
}

// NewAPI returns the reference API over b.
func NewAPI(b Backend, log *slog.Logger) http.Handler {
	a := &api{Backend: b, log: log}
	r := chi.NewRouter()
	r.Use(headAsGet)
	r.NotFound(func(w http.ResponseWriter, _ *http.Request) {
		WriteError(w, http.StatusNotFound, "no such resource")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, _ *http.Request) {
		WriteError(w, http.StatusMethodNotAllowed, "method not allowed here")
	})
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	r.Get("/patients", a.list)
	r.Post("/patients", a.create)
	r.Get("/patients/{id}", a.get)
	r.Put("/patients/{id}", a.update)
	r.Delete("/patients/{id}", a.delete)
	r.Get("/patients/{id}/photos", a.listPhotos)
	r.Post("/patients/{id}/photos", a.addPhoto)
	r.Get("/photos/{id}", a.getPhoto)
	return r
}

// headAsGet routes a HEAD request as a GET (net/http sends no body for
// it): the API has no HEAD routes of its own. chi's middleware.GetHead
// does the same, but its package imports net/http/pprof, and that keeps
// the Go runtime's memory profiling on in every binary that links this
// package, strangler's included, with nothing to read the profiles.
func headAsGet(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodHead {
			chi.RouteContext(r.Context()).RouteMethod = http.MethodGet
		}
		next.ServeHTTP(w, r)
	})
}

type api struct {
	Backend
	log *slog.Logger
}

const (
	defaultPage = 50
	maxPage     = 500
	// maxPatientBody caps a patient's JSON.
	maxPatientBody = 1 << 20
)

func (a *api) list(w http.ResponseWriter, r *http.Request) {
	after, err := queryInt(r, "after", 0)
	if err != nil {
		WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	limit, err := queryInt(r, "limit", defaultPage)
	if err != nil || limit < 1 || limit > maxPage {
		WriteError(w, http.StatusBadRequest, "limit must be a number from 1 to 500")
		return
	}
	ps, err := a.Patients.List(r.Context(), after, int(limit))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if ps == nil {
		ps = []Patient{}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"patients": ps})
}

func (a *api) get(w http.ResponseWriter, r *http.Request) {
	id, ok := PathID(w, r, ErrNotFound)
	if !ok {
		return
	}
	p, err := a.Patients.Get(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	WriteJSON(w, http.StatusOK, p)
}

func (a *api) create(w http.ResponseWriter, r *http.Request) {
	primaryID, ok := a.primaryID(w, r)
	if !ok {
		return
	}
	a.write(w, r, maxPatientBody, func(ctx context.Context, body []byte) (Response, error) {
		p, msg, status := DecodePatient(body)
		if status != 0 {
			return errorResponse(status, msg), nil
		}
		p.ID = primaryID
		p, err := a.Patients.Create(ctx, p)
		if err != nil {
			return a.storeFailure(err)
		}
		return jsonResponse(http.StatusCreated, "/patients/"+strconv.FormatInt(p.ID, 10), p), nil
	})
}

func (a *api) update(w http.ResponseWriter, r *http.Request) {
	id, ok := PathID(w, r, ErrNotFound)
	if !ok {
		return
	}
	a.write(w, r, maxPatientBody, func(ctx context.Context, body []byte) (Response, error) {
		p, msg, status := DecodePatient(body)
		if status != 0 {
			return errorResponse(status, msg), nil
		}
		p.ID = id
		p, err := a.Patients.Update(ctx, p)
		if err != nil {
			return a.storeFailure(err)
		}
		return jsonResponse(http.StatusOK, "", p), nil
	})
}

func (a *api) delete(w http.ResponseWriter, r *http.Request) {
	id, ok := PathID(w, r, ErrNotFound)
	if !ok {
		return
	}
	a.write(w, r, maxPatientBody, func(ctx context.Context, _ []byte) (Response, error) {
		if err := a.Patients.Delete(ctx, id); err != nil {
			return a.storeFailure(err)
		}
		return Response{Status: http.StatusNoContent}, nil
	})
}

func (a *api) listPhotos(w http.ResponseWriter, r *http.Request) {
	id, ok := PathID(w, r, ErrNotFound)
	if !ok {
		return
	}
	phs, err := a.Photos.Photos(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if phs == nil {
		phs = []Photo{}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"photos": phs})
}

func (a *api) addPhoto(w http.ResponseWriter, r *http.Request) {
	patientID, ok := PathID(w, r, ErrNotFound)
	if !ok {
		return
	}
	primaryID, ok := a.primaryID(w, r)
	if !ok {
		return
	}
	ctype := r.Header.Get("Content-Type")
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	if _, _, err := mime.ParseMediaType(ctype); err != nil || len(ctype) > 100 {
		WriteError(w, http.StatusBadRequest, "invalid Content-Type")
		return
	}
	a.write(w, r, MaxPhotoSize, func(ctx context.Context, body []byte) (Response, error) {
		if len(body) == 0 {
			return errorResponse(http.StatusUnprocessableEntity, "the photo is empty; send the image as the request body"), nil
		}
		ph, err := a.Photos.AddPhoto(ctx, Photo{ID: primaryID, PatientID: patientID, ContentType: ctype}, body)
		if err != nil {
			return a.storeFailure(err)
		}
		return jsonResponse(http.StatusCreated, "/photos/"+strconv.FormatInt(ph.ID, 10), ph), nil
	})
}

func (a *api) getPhoto(w http.ResponseWriter, r *http.Request) {
	id, ok := PathID(w, r, ErrPhotoNotFound)
	if !ok {
		return
	}
	ph, data, err := a.Photos.OpenPhoto(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer data.Close()
	w.Header().Set("Content-Type", ph.ContentType)
	w.Header().Set("Content-Length", strconv.FormatInt(ph.Size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	// The status is sent: a failure now can only cut the body short, which
	// the client sees against Content-Length.
	if _, err := io.Copy(w, data); err != nil && r.Context().Err() == nil {
		a.log.WarnContext(r.Context(), "photo cut short", "error", err)
	}
}

// primaryID reads X-Strangler-Primary-Id when the backend keeps it: 0 when
// absent or ignored.
func (a *api) primaryID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	v := r.Header.Get("X-Strangler-Primary-Id")
	if !a.KeepPrimaryID || v == "" {
		return 0, true
	}
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id < 1 {
		WriteError(w, http.StatusBadRequest, "X-Strangler-Primary-Id must be a positive whole number")
		return 0, false
	}
	return id, true
}

// writeOp does a write once its body is read. It returns the response to
// send, or an error for an internal failure.
type writeOp func(ctx context.Context, body []byte) (Response, error)

// notKept carries a response that must not be remembered for an
// Idempotency-Key: only 2xx answers are. A 404 or 409 applied nothing, and
// a dual-write repair retrying with the same key must get a fresh try
// once, say, the patient it needed exists.
type notKept struct{ resp Response }

func (notKept) Error() string { return "response not kept" }

// write reads the body up to limit and runs op, once per Idempotency-Key
// when the backend honours them.
func (a *api) write(w http.ResponseWriter, r *http.Request, limit int64, op writeOp) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the body is larger than %d bytes", limit))
			return
		}
		WriteError(w, http.StatusBadRequest, "reading the body: "+err.Error())
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" || a.Idempotency == nil {
		resp, err := op(r.Context(), body)
		a.send(w, r, resp, err)
		return
	}
	if !validKey(key) {
		WriteError(w, http.StatusBadRequest, "Idempotency-Key must be 1 to 255 printable ASCII characters")
		return
	}
	replayed := true
	resp, err := a.Idempotency.Once(r.Context(), key, fingerprint(r, body), func(ctx context.Context) (Response, error) {
		replayed = false
		resp, err := op(ctx, body)
		if err == nil && (resp.Status < 200 || resp.Status > 299) {
			return resp, notKept{resp}
		}
		return resp, err
	})
	var nk notKept
	switch {
	case errors.As(err, &nk):
		resp, err = nk.resp, nil
	case errors.Is(err, ErrKeyReused):
		resp, err = errorResponse(http.StatusUnprocessableEntity, ErrKeyReused.Error()), nil
	case err == nil && replayed:
		w.Header().Set("Idempotent-Replayed", "true")
	}
	a.send(w, r, resp, err)
}

func (a *api) send(w http.ResponseWriter, r *http.Request, resp Response, err error) {
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if resp.Location != "" {
		w.Header().Set("Location", resp.Location)
	}
	if len(resp.Body) > 0 {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(resp.Status)
	w.Write(resp.Body)
}

// fingerprint identifies a write request, so that reusing its key for a
// different one is caught.
func fingerprint(r *http.Request, body []byte) []byte {
	h := sha256.New()
	for _, s := range []string{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("X-Strangler-Primary-Id")} {
		fmt.Fprintf(h, "%d:%s\n", len(s), s)
	}
	h.Write(body)
	return h.Sum(nil)
}

func validKey(k string) bool {
	if len(k) > 255 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// storeFailure turns a store error into the client's answer: 404 or 409
// for what the client can fix, an internal error otherwise.
func (a *api) storeFailure(err error) (Response, error) {
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrPhotoNotFound):
		return errorResponse(http.StatusNotFound, notFoundMessage(err)), nil
	case errors.Is(err, ErrConflict):
		return errorResponse(http.StatusConflict, ErrConflict.Error()), nil
	}
	return Response{}, err
}

// fail answers an error: the client's share of it, or 500 with the detail
// in the log rather than the response.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	if resp, err := a.storeFailure(err); err == nil {
		a.send(w, r, resp, nil)
		return
	}
	a.log.ErrorContext(r.Context(), "store failed", "method", r.Method, "error", err)
	WriteError(w, http.StatusInternalServerError, "internal error")
}

func notFoundMessage(err error) string {
	if errors.Is(err, ErrPhotoNotFound) {
		return ErrPhotoNotFound.Error()
	}
	return ErrNotFound.Error()
}

// DecodePatient parses and validates a patient's JSON; a non-zero status
// means it is unfit, with msg saying why: 400 for JSON that is not a
// patient (a field it does not know included, named in msg, so that a
// misspelled field is refused rather than blanking a column), 422 for a
// patient that is not valid.
func DecodePatient(body []byte) (p Patient, msg string, status int) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, "invalid patient JSON: " + err.Error(), http.StatusBadRequest
	}
	if err := p.Validate(); err != nil {
		return p, err.Error(), http.StatusUnprocessableEntity
	}
	return p, "", 0
}

// PathID reads the {id} of the path; one that cannot be an id is simply
// not found: it answers 404 with notFound's text and returns false.
func PathID(w http.ResponseWriter, r *http.Request, notFound error) (int64, bool) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id < 1 {
		WriteError(w, http.StatusNotFound, notFound.Error())
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

func jsonResponse(status int, location string, v any) Response {
	body, _ := json.Marshal(v)
	return Response{Status: status, Location: location, Body: append(body, '\n')}
}

func errorResponse(status int, msg string) Response {
	return jsonResponse(status, "", map[string]string{"error": msg})
}

// WriteJSON answers status with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// WriteError answers status with the API's error body, {"error": msg}.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, map[string]string{"error": msg})
}
