//go:build race

package store

// raceDetector says the tests run with -race, under which sync.Pool
// drops some of what it is given and allocation counts mean nothing.
const raceDetector = true
