package modern

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"strangler/patients"
)

// Faults make the migration target misbehave the way a busy service does,
// for the demo and the tests. Which requests fail is decided by their
// Idempotency-Key, so a run is reproducible; each chosen key fails on its
// first attempt only.
type Faults struct {
	// Unavailable is the percentage of keys answered 503 once.
	Unavailable int
	// TooMany is the percentage of keys answered 429 once, with
	// Retry-After: 1.
	TooMany int
	// JobTime is how long the asynchronous job each applied import starts
	// stays pending (a search index update, say); 0 starts none.
	JobTime time.Duration
}

// Imports is the reference API as a migration target: the patients API
// plus an import endpoint for the backfill and the admin calls a migration
// makes around it. PUT /imports/patients/{id} creates or replaces the
// legacy patient id (its legacy_id; the patient's own fields, not its
// MRNs) and must carry an Idempotency-Key: it
// applies once per key, recorded in import_log in the same transaction.
// POST /admin/workflows/disable and /enable switch the service's
// workflows; GET /admin/jobs says how many jobs are pending; GET
// /admin/events lists the admin calls in the order they came.
type Imports struct {
	pool   *pgxpool.Pool
	idem   *Idempotency
	faults Faults
	log    *slog.Logger

	mu       sync.Mutex
	failed   map[string]bool // keys already failed once
	pending  int
	disabled bool
	events   []string
}

// NewImports returns the migration target over pool, a database Open
// returned.
func NewImports(pool *pgxpool.Pool, faults Faults, log *slog.Logger) *Imports {
	return &Imports{pool: pool, idem: NewIdempotency(pool), faults: faults, log: log,
		failed: map[string]bool{}}
}

// Handler serves the imports and admin calls, and the patients API for
// everything else.
func (im *Imports) Handler() http.Handler {
	r := chi.NewRouter()
	r.Put("/imports/patients/{id}", im.put)
	r.Post("/admin/workflows/{action:disable|enable}", im.workflows)
	r.Get("/admin/jobs", im.jobs)
	r.Get("/admin/events", im.listEvents)
	r.Mount("/", New(im.pool, im.log))
	return r
}

// Events are the admin calls so far, in order: "workflows disable",
// "jobs pending=3"…
func (im *Imports) Events() []string {
	im.mu.Lock()
	defer im.mu.Unlock()
	return append([]string(nil), im.events...)
}

// fault is the status a key's first attempt is answered with, 0 for none.
func (im *Imports) fault(key string) int {
	h := fnv.New32a()
	io.WriteString(h, key)
	n := int(h.Sum32() % 100)
	status := 0
	switch {
	case n < im.faults.Unavailable:
		status = http.StatusServiceUnavailable
	case n < im.faults.Unavailable+im.faults.TooMany:
		status = http.StatusTooManyRequests
	}
	if status == 0 {
		return 0
	}
	im.mu.Lock()
	defer im.mu.Unlock()
	if im.failed[key] {
		return 0
	}
	im.failed[key] = true
	return status
}

func (im *Imports) put(w http.ResponseWriter, r *http.Request) {
	notLegacy := fmt.Errorf("no such legacy patient id; want 1 to %d", NativeIDBase-1)
	id, ok := patients.PathID(w, r, notLegacy)
	if !ok {
		return
	}
	if id >= NativeIDBase {
		patients.WriteError(w, http.StatusNotFound, notLegacy.Error())
		return
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" || len(key) > 255 {
		patients.WriteError(w, http.StatusBadRequest, "an import needs an Idempotency-Key header (at most 255 bytes)")
		return
	}
	if status := im.fault(key); status != 0 {
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		patients.WriteError(w, status, "busy; try again later")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
	if err != nil {
		patients.WriteError(w, http.StatusRequestEntityTooLarge, "body over 64 KiB")
		return
	}
	p, msg, status := patients.DecodePatient(body)
	if status != 0 {
		patients.WriteError(w, status, msg)
		return
	}
	p.ID = id
	fp := sha256.Sum256(append([]byte(r.URL.Path+"\n"), body...))
	resp, err := im.idem.Once(r.Context(), key, fp[:], func(ctx context.Context) (patients.Response, error) {
		return im.upsert(ctx, key, p)
	})
	switch {
	case errors.Is(err, patients.ErrKeyReused):
		patients.WriteError(w, http.StatusUnprocessableEntity, err.Error())
		return
	case err != nil:
		im.log.Error("import", "error", err)
		patients.WriteError(w, http.StatusInternalServerError, "internal error")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.Status)
	w.Write(resp.Body)
}

// upsert creates or replaces the patient's own fields (not its MRNs) and
// logs the import, in one statement inside the idempotent write's
// transaction, and starts the import's job.
func (im *Imports) upsert(ctx context.Context, key string, p patients.Patient) (patients.Response, error) {
	tx := ctx.Value(txKey{}).(pgx.Tx)
	_, err := tx.Exec(ctx, `WITH p AS (
			INSERT INTO patients (legacy_id, first_name, last_name, birth_date, email)
			VALUES ($1, $2, $3, NULLIF($4, '')::date, NULLIF($5, ''))
			ON CONFLICT (legacy_id) DO UPDATE SET first_name = excluded.first_name, last_name = excluded.last_name,
				birth_date = excluded.birth_date, email = excluded.email, updated_at = now()
			RETURNING legacy_id)
		INSERT INTO import_log (idempotency_key, patient_id) SELECT $6, legacy_id FROM p`,
		p.ID, p.FirstName, p.LastName, p.BirthDate, p.Email, key)
	if err != nil {
		return patients.Response{}, storeError(err)
	}
	if d := im.faults.JobTime; d > 0 {
		im.mu.Lock()
		im.pending++
		im.mu.Unlock()
		time.AfterFunc(d, func() {
			im.mu.Lock()
			im.pending--
			im.mu.Unlock()
		})
	}
	p.MRNs = nil
	body, _ := json.Marshal(p)
	return patients.Response{Status: http.StatusOK, Body: append(body, '\n')}, nil
}

func (im *Imports) workflows(w http.ResponseWriter, r *http.Request) {
	action := chi.URLParam(r, "action")
	im.mu.Lock()
	im.disabled = action == "disable"
	im.events = append(im.events, "workflows "+action)
	im.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (im *Imports) jobs(w http.ResponseWriter, _ *http.Request) {
	im.mu.Lock()
	n, enabled := im.pending, !im.disabled
	im.events = append(im.events, fmt.Sprintf("jobs pending=%d", n))
	im.mu.Unlock()
	patients.WriteJSON(w, http.StatusOK, map[string]any{"pending": n, "workflows_enabled": enabled})
}

func (im *Imports) listEvents(w http.ResponseWriter, _ *http.Request) {
	patients.WriteJSON(w, http.StatusOK, map[string]any{"events": im.Events()})
}
