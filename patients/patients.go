// Package patients is the reference API behind the demo and the end-to-end
// tests: the JSON contract for patients and their photos that the legacy and
// the modern backend both serve, over whatever stores each side keeps its
// rows in.
//
// The contract:
//
//	GET    /patients?after=ID&limit=N  {"patients": [patient…]} by id
//	POST   /patients                   201, Location, the patient
//	GET    /patients/{id}              the patient
//	PUT    /patients/{id}              the patient; mrns replaced only when given
//	DELETE /patients/{id}              204
//	GET    /patients/{id}/photos       {"photos": [photo…]} by id
//	POST   /patients/{id}/photos       the raw image as the body; 201, Location, the photo
//	GET    /photos/{id}                the raw image, streamed
//
// Errors are JSON, {"error": "…"}, with the status saying what went wrong.
package patients

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Patient is one patient as the API shows it.
type Patient struct {
	ID        int64  `json:"id"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	BirthDate string `json:"birth_date"`
	Email     string `json:"email,omitempty"`
	// MRNs are the patient's medical record numbers, one per hospital site,
	// ordered by site. On PUT, nil keeps the stored ones.
	MRNs []MRN `json:"mrns,omitempty"`
}

// MRN is a medical record number at one hospital site.
type MRN struct {
	Site string `json:"site"`
	MRN  string `json:"mrn"`
}

// Photo describes one stored photo; its bytes are served separately.
type Photo struct {
	ID          int64  `json:"id"`
	PatientID   int64  `json:"patient_id"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
}

// MaxPhotoSize caps an uploaded photo: it is buffered whole on its way into
// the database (MariaDB's default max_allowed_packet is 16 MiB).
const MaxPhotoSize = 8 << 20

// Errors a store returns that the API turns into statuses.
var (
	// ErrNotFound is returned for an id the store does not hold.
	ErrNotFound = errors.New("patient not found")
	// ErrPhotoNotFound is returned for a photo id the store does not hold.
	ErrPhotoNotFound = errors.New("photo not found")
	// ErrConflict is returned when a write collides with stored data: an id
	// that is taken, an MRN that belongs to another patient.
	ErrConflict = errors.New("conflicts with stored data")
)

// Store keeps patients.
type Store interface {
	Get(ctx context.Context, id int64) (Patient, error)
	// List returns up to limit patients with ids above after, by id.
	List(ctx context.Context, after int64, limit int) ([]Patient, error)
	// Create stores p and returns it with its id: p.ID when it is not zero
	// (a dual-write secondary keeping the primary's id), a new one otherwise.
	Create(ctx context.Context, p Patient) (Patient, error)
	// Update replaces the patient p.ID; nil MRNs keep the stored ones.
	Update(ctx context.Context, p Patient) (Patient, error)
	Delete(ctx context.Context, id int64) error
}

// PhotoStore keeps patients' photos.
type PhotoStore interface {
	// AddPhoto stores data as a photo of ph.PatientID with ph.ContentType,
	// under ph.ID when it is not zero, and returns the stored photo.
	AddPhoto(ctx context.Context, ph Photo, data []byte) (Photo, error)
	// Photos lists a patient's photos by id; ErrNotFound if there is no
	// such patient.
	Photos(ctx context.Context, patientID int64) ([]Photo, error)
	// OpenPhoto returns a photo and a reader of its bytes, which the caller
	// closes.
	OpenPhoto(ctx context.Context, id int64) (Photo, io.ReadCloser, error)
}

// Response is a write's answer as the API sends it, kept whole so that an
// idempotent write can be answered again without running again.
type Response struct {
	Status   int    `json:"status"`
	Location string `json:"location,omitempty"`
	Body     []byte `json:"body"`
}

// ErrKeyReused is returned by an Idempotency for a key that was used with a
// different request.
var ErrKeyReused = errors.New("Idempotency-Key was already used with a different request")

// Idempotency applies a write carrying an Idempotency-Key once.
type Idempotency interface {
	// Once runs write unless key has a stored response, and stores the
	// response write returns. A stored key with another fingerprint gives
	// ErrKeyReused. An error from write stores nothing, so a retry with the
	// same key runs the write again.
	Once(ctx context.Context, key string, fingerprint []byte, write func(ctx context.Context) (Response, error)) (Response, error)
}

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Ken"}
	lastNames  = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Backus", "Hamilton", "Thompson"}
)

// Synthetic returns the made-up patient with the given id: the same on
// both backends, so that their answers for it compare equal.
func Synthetic(id int64) Patient {
	first := firstNames[id%int64(len(firstNames))]
	last := lastNames[(id/int64(len(firstNames)))%int64(len(lastNames))]
	return Patient{
		ID:        id,
		FirstName: first,
		LastName:  last,
		BirthDate: fmt.Sprintf("19%02d-%02d-%02d", 40+id%60, 1+id%12, 1+id%28),
	}
}

// Validate reports what makes p unfit to store, in words for the client.
func (p Patient) Validate() error {
	switch {
	case p.FirstName == "":
		return errors.New("first_name is required")
	case p.LastName == "":
		return errors.New("last_name is required")
	case len(p.FirstName) > 100 || len(p.LastName) > 100:
		return errors.New("first_name and last_name are at most 100 bytes")
	case len(p.Email) > 255:
		return errors.New("email is at most 255 bytes")
	case p.Email != "" && !plausibleEmail(p.Email):
		return errors.New("email is not an address like name@example.org")
	}
	if p.BirthDate != "" {
		if _, err := time.Parse(time.DateOnly, p.BirthDate); err != nil {
			return fmt.Errorf("birth_date %q is not a date like 1970-01-31", p.BirthDate)
		}
	}
	sites := map[string]bool{}
	for _, m := range p.MRNs {
		switch {
		case m.Site == "" || m.MRN == "":
			return errors.New("every mrn needs a site and an mrn")
		case len(m.Site) > 20 || len(m.MRN) > 20:
			return errors.New("mrn site and number are at most 20 bytes")
		case sites[m.Site]:
			return fmt.Errorf("two mrns for site %q", m.Site)
		}
		sites[m.Site] = true
	}
	return nil
}

// plausibleEmail is the modern schema's check: one @ with something on
// both sides and no spaces.
func plausibleEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && domain != "" && !strings.ContainsAny(s, " \t\r\n") && !strings.Contains(domain, "@")
}
