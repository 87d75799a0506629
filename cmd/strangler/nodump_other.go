//go:build !linux

package main

// refuseCoreDumps does nothing outside Linux, which has no
// PR_SET_DUMPABLE: there, keep core dumps off (`ulimit -c 0`).
func refuseCoreDumps() {}
