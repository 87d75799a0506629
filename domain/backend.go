package domain

import "fmt"

// Backend names one side of the migration.
type Backend string

// The two backends.
const (
	Legacy Backend = "legacy"
	Modern Backend = "modern"
)

// UnmarshalText parses a backend name.
func (b *Backend) UnmarshalText(t []byte) error {
	switch Backend(t) {
	case Legacy, Modern:
		*b = Backend(t)
		return nil
	}
	return fmt.Errorf("unknown backend %q; want legacy or modern", t)
}
