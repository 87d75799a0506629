package main

import (
	"strings"
	"testing"
)

func TestSummaryCountsSkipsByReasonAndFailsOnAFailure(t *testing.T) {
	events := strings.Join([]string{
		`{"Action":"run","Package":"strangler/store","Test":"TestA"}`,
		`{"Action":"output","Package":"strangler/store","Test":"TestA","Output":"=== RUN   TestA\n"}`,
		`{"Action":"output","Package":"strangler/store","Test":"TestA","Output":"    suite_test.go:12: database not reachable; set STRANGLER_TEST_POSTGRES\n"}`,
		`{"Action":"output","Package":"strangler/store","Test":"TestA","Output":"--- SKIP: TestA (0.00s)\n"}`,
		`{"Action":"skip","Package":"strangler/store","Test":"TestA"}`,
		`{"Action":"output","Package":"strangler/store","Test":"TestB","Output":"    other_test.go:99: database not reachable; set STRANGLER_TEST_POSTGRES\n"}`,
		`{"Action":"skip","Package":"strangler/store","Test":"TestB"}`,
		`{"Action":"output","Package":"strangler/store","Test":"TestC","Output":"    c_test.go:5: got 1, want 2\n"}`,
		`{"Action":"output","Package":"strangler/store","Test":"TestC","Output":"--- FAIL: TestC (0.00s)\n"}`,
		`{"Action":"fail","Package":"strangler/store","Test":"TestC"}`,
		`{"Action":"output","Package":"strangler/store","Test":"TestD","Output":"    d_test.go:5: a passing test's log\n"}`,
		`{"Action":"pass","Package":"strangler/store","Test":"TestD"}`,
		`{"Action":"output","Package":"strangler/store","Output":"FAIL\tstrangler/store\t0.1s\n"}`,
		`{"Action":"fail","Package":"strangler/store"}`,
	}, "\n")
	var out strings.Builder
	failed, err := summarize(strings.NewReader(events), &out)
	if err != nil || !failed {
		t.Errorf("summarize: failed %v, %v; want a failed run", failed, err)
	}
	got := out.String()
	for _, want := range []string{
		"got 1, want 2", "FAIL\tstrangler/store",
		"2 tests were skipped:", "2: database not reachable; set STRANGLER_TEST_POSTGRES", "(store.TestA, store.TestB)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "a passing test's log") {
		t.Errorf("the summary shows a passing test's output:\n%s", got)
	}
}

func TestSummaryOfACleanRunPasses(t *testing.T) {
	events := `{"Action":"pass","Package":"strangler/x","Test":"TestA"}
{"Action":"output","Package":"strangler/x","Output":"ok  \tstrangler/x\t0.1s\n"}
{"Action":"pass","Package":"strangler/x"}`
	var out strings.Builder
	if failed, err := summarize(strings.NewReader(events), &out); failed || err != nil {
		t.Errorf("summarize: failed %v, %v; want a passed run", failed, err)
	}
	if got := out.String(); !strings.Contains(got, "ok  \tstrangler/x") || !strings.Contains(got, "no test was skipped") {
		t.Errorf("summary:\n%s", got)
	}
}

func TestSummaryFailsOnABuildFailure(t *testing.T) {
	events := `{"ImportPath":"strangler/x [strangler/x.test]","Action":"build-output","Output":"x/a.go:3:1: syntax error\n"}
{"ImportPath":"strangler/x [strangler/x.test]","Action":"build-fail"}`
	var out strings.Builder
	if failed, _ := summarize(strings.NewReader(events), &out); !failed || !strings.Contains(out.String(), "syntax error") {
		t.Errorf("a build failure: failed %v, output %q; want failed with the compiler's message", failed, out.String())
	}
}

// A package that times out: go test -json files the panic under the test
// that was running, which never gets a fail event of its own.
func TestSummaryShowsATimedOutPackagesRunningTest(t *testing.T) {
	events := `{"Action":"run","Package":"strangler/x","Test":"TestSlow"}
{"Action":"output","Package":"strangler/x","Test":"TestSlow","Output":"=== RUN   TestSlow\n"}
{"Action":"output","Package":"strangler/x","Test":"TestSlow","Output":"    x_test.go:3: started\n"}
{"Action":"output","Package":"strangler/x","Test":"TestSlow","Output":"panic: test timed out after 2s\n"}
{"Action":"output","Package":"strangler/x","Test":"TestSlow","Output":"x.TestSlow(0x1d7caf91a6c8?)\n"}
{"Action":"run","Package":"strangler/y","Test":"TestOther"}
{"Action":"output","Package":"strangler/y","Test":"TestOther","Output":"    y_test.go:9: still going in another package\n"}
{"Action":"output","Package":"strangler/x","Output":"FAIL\tstrangler/x\t2.007s\n"}
{"Action":"fail","Package":"strangler/x"}`
	var out strings.Builder
	if failed, err := summarize(strings.NewReader(events), &out); !failed || err != nil {
		t.Errorf("summarize: failed %v, %v; want a failed run", failed, err)
	}
	got := out.String()
	for _, want := range []string{"x.TestSlow did not end", "started", "panic: test timed out after 2s", "x.TestSlow(0x1d7caf91a6c8?)"} {
		if !strings.Contains(got, want) {
			t.Errorf("the summary of a timed-out package lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "another package") {
		t.Errorf("the summary shows a test of a package that has not failed:\n%s", got)
	}
}
