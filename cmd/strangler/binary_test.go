package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The tests that need a real process (signals, SIGKILL, memory use,
// several replicas) run strangler as a child built once per test run.
// Under the race detector the child is built with it too, so the worker,
// the leases and crash recovery run under it as they do in production
// code paths, and a data race the child reports fails the test.

// build is one build of the child binary.
type build struct {
	once sync.Once
	path string
	err  error
}

var (
	// binDir holds the builds; TestMain removes it.
	binDir string
	// builds are the child binary with (true) and without the race
	// detector.
	builds = map[bool]*build{true: {}, false: {}}
)

// TestMain removes the child binaries when the tests are done: they are
// tens of megabytes per run. Unless -test.parallel is given, it lets
// waitingParallel tests run at once, not GOMAXPROCS (2 on the CI box).
func TestMain(m *testing.M) {
	flag.Parse()
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "test.parallel" })
	if !given {
		flag.Set("test.parallel", strconv.Itoa(max(waitingParallel, runtime.GOMAXPROCS(0))))
	}
	dir, err := os.MkdirTemp("", "strangler-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// waitingParallel is how many parallel tests run at once by default. The
// tests here that call t.Parallel spend their time waiting for a lease to
// pass or a listener's timeout to fire, not computing: with only
// GOMAXPROCS of them at once, the package ran them nearly one after
// another.
const waitingParallel = 4

// binary builds strangler once, with -race when the tests run with it.
func binary(t *testing.T) string {
	t.Helper()
	return buildBinary(t, raceDetector)
}

// productionBinary builds strangler as it ships, without the race
// detector, for the tests that measure the process (its memory).
func productionBinary(t *testing.T) string {
	t.Helper()
	return buildBinary(t, false)
}

func buildBinary(t *testing.T, race bool) string {
	t.Helper()
	b := builds[race]
	b.once.Do(func() {
		// -buildvcs=auto, whatever GOFLAGS says: `strangler version`
		// reports the revision a build in a checkout is stamped with.
		args := []string{"build", "-buildvcs=auto", "-o", filepath.Join(binDir, "strangler")}
		if race {
			args = []string{"build", "-buildvcs=auto", "-race", "-o", filepath.Join(binDir, "strangler-race")}
		}
		out, err := exec.Command("go", append(args, ".")...).CombinedOutput()
		if err != nil {
			b.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			return
		}
		b.path = args[len(args)-1]
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
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
