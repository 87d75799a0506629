//go:build !linux

package main

import (
	"errors"
	"os"
	"os/exec"
	"time"
)

// The bench is meant for Linux, where it reads memory from /proc. Elsewhere
// it still runs and reports memory as unavailable.

func setProcAttr(*exec.Cmd) {}

func guarded(_ string, cmd *exec.Cmd) *exec.Cmd { return cmd }

func runGuard([]string) error { return errors.New("-role guard is Linux-only") }

func killGroup(p *os.Process) { p.Kill() }

func groupMemory(int) (memory, error) {
	return memory{}, errors.New("resident memory is read from /proc, which only Linux has")
}

func groupCPU(int) (time.Duration, error) {
	return 0, errors.New("CPU time is read from /proc, which only Linux has")
}

func selfCPU() (time.Duration, error) {
	return 0, errors.New("CPU time is only measured on Linux")
}

func loadAverage() string { return "" }
