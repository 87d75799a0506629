// Package patients is the reference API behind the demo and the end-to-end
// tests: the JSON contract for patients that the legacy and the modern
// backend both serve, over whatever Store each side keeps its rows in.
package patients

import (
	"context"
	"errors"
	"fmt"
)

// Patient is one patient as the API shows it.
type Patient struct {
	ID        int64  `json:"id"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	BirthDate string `json:"birth_date"`
	Email     string `json:"email,omitempty"`
}

// ErrNotFound is returned by a Store for an id it does not hold.
var ErrNotFound = errors.New("patient not found")

// Store keeps patients.
type Store interface {
	Get(ctx context.Context, id int64) (Patient, error)
	// List returns up to limit patients with ids above after, by id.
	List(ctx context.Context, after int64, limit int) ([]Patient, error)
	// Create stores p and returns it with its new id.
	Create(ctx context.Context, p Patient) (Patient, error)
	Update(ctx context.Context, p Patient) (Patient, error)
	Delete(ctx context.Context, id int64) error
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

func (p Patient) validate() error {
	switch {
	case p.FirstName == "":
		return errors.New("first_name is required")
	case p.LastName == "":
		return errors.New("last_name is required")
	}
	return nil
}
