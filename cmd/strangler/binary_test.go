package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// The tests that need a real process (signals, SIGKILL, memory use,
// several replicas) run strangler as a child built once per test run.
// Under the race detector the child is built with it too, so the worker,
// the leases and crash recovery run under it as they do in production
// code paths, and a data race the child reports fails the test.

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// TestMain removes the child binary when the tests are done: it is tens
// of megabytes per run.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds strangler once, with -race when the tests run with it.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "strangler-bin")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "strangler")
		// -buildvcs=auto, whatever GOFLAGS says: `strangler version`
		// reports the revision a build in a checkout is stamped with.
		args := []string{"build", "-buildvcs=auto", "-o", binPath}
		if raceDetector {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// failOnDataRace fails the test if a child's stderr holds a report of
// the race detector, and shows the reports (not the log around them).
func failOnDataRace(t *testing.T, child, stderr string) {
	t.Helper()
	const start, end = "WARNING: DATA RACE", "=================="
	var reports []string
	for rest := stderr; ; {
		i := strings.Index(rest, start)
		if i < 0 {
			break
		}
		rest = rest[i:]
		report, after, _ := strings.Cut(rest, end)
		reports, rest = append(reports, report), after
	}
	if len(reports) > 0 {
		t.Errorf("%s reported %d data races:\n%s", child, len(reports), strings.Join(reports, "\n"))
	}
}
