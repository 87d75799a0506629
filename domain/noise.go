package domain

import "time"

// NoiseField is a response field learned to differ between legacy and
// modern on every call, such as a timestamp, and ignored by comparisons.
type NoiseField struct {
	Route   string
	Path    string
	AddedAt time.Time
}
