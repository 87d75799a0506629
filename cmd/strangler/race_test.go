//go:build race

package main

// raceDetector says the tests run with -race: the child binary is built
// with it too.
const raceDetector = true
