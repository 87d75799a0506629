package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestAReloadAppliesOnlyWhatItReadWhole: a file rewritten in place with
// what it already held (a configuration agent on its round, every few
// seconds) is the same at every look and after the load, yet the load
// can read it between the two writes. Before, the files were looked at
// again after the load and the half it read (one of two routes) was
// applied; now what the load read is compared, and the half is not.
func TestAReloadAppliesOnlyWhatItReadWhole(t *testing.T) {
	h := startReloadHarness(t, "a")
	dir := filepath.Dir(h.path)
	whole := reloadHead(dir) + routeLines("a", "b")
	half := reloadHead(dir) + routeLines("a")
	h.write(whole, os.O_TRUNC)
	read := h.rl.env.ReadFile
	raced := false
	h.rl.env.ReadFile = func(path string, limit int64) ([]byte, error) {
		if path != h.path || raced {
			return read(path, limit)
		}
		// The agent's round: the first write is on disk when the load
		// reads, the second lands before anything looks again.
		raced = true
		h.write(half, os.O_TRUNC)
		b, err := read(path, limit)
		h.write(routeLines("b"), os.O_APPEND)
		return b, err
	}
	h.look(settleLooks + 1)
	h.look(settleLooks + 1)
	want := [][]string{{"a", "b"}}
	if got := h.settled(); !raced || !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("applied %v (raced: %v), want only %v: never the half the load read", got, raced, want)
	}
}
