package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionTextSaysWhatTheBuildStamped(t *testing.T) {
	info := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "strangler", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{
			{Key: "GOOS", Value: "linux"}, {Key: "GOARCH", Value: "amd64"},
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "2663789b0c5e3a1f9d8e7c6b5a4f3e2d1c0b9a8f"},
			{Key: "vcs.time", Value: "2026-11-30T12:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	want := `strangler v1.4.0
revision:  2663789b0c5e3a1f9d8e7c6b5a4f3e2d1c0b9a8f (modified)
committed: 2026-11-30T12:00:00Z
go:        go1.26.8 linux/amd64
`
	if got := versionText(info); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}

	// Built outside a checkout: no revision, and no version Go could know.
	info.Main.Version, info.Settings = "", info.Settings[:2]
	want = "strangler (devel)\ngo:        go1.26.8 linux/amd64\n"
	if got := versionText(info); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestVersionOfABuiltBinary builds strangler in this checkout, as `make
// build` does, and checks that it names the commit it was built from.
func TestVersionOfABuiltBinary(t *testing.T) {
	// Go stamps a revision only where .git is a folder: not in a git
	// worktree, whose .git is a file.
	if fi, err := os.Stat("../../.git"); err != nil || !fi.IsDir() {
		t.Skip("not in a plain git checkout, where go build stamps the revision")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatalf("git rev-parse HEAD: %v", err)
	}
	out, err := exec.Command(binary(t), "version").Output()
	if err != nil {
		t.Fatalf("strangler version: %v", err)
	}
	lines := strings.Split(string(out), "\n")
	if !strings.HasPrefix(lines[0], "strangler v") {
		t.Errorf("first line %q, want the module version Go stamped from git", lines[0])
	}
	if want := "revision:  " + strings.TrimSpace(string(head)); !strings.HasPrefix(lines[1], want) {
		t.Errorf("second line %q, want %q", lines[1], want)
	}
	if !strings.Contains(string(out), runtime.Version()) {
		t.Errorf("%q does not name the Go version %s", out, runtime.Version())
	}
}

func TestVersionTakesNoArguments(t *testing.T) {
	var stdout bytes.Buffer
	if err := run(context.Background(), []string{"version"}, noEnv, &stdout, io.Discard); err != nil || !strings.HasPrefix(stdout.String(), "strangler ") {
		t.Errorf("got %q, %v", stdout.String(), err)
	}
	var u usageError
	if err := run(context.Background(), []string{"version", "extra"}, noEnv, io.Discard, io.Discard); err == nil || !errors.As(err, &u) {
		t.Errorf("version extra: got %v, want a usage error", err)
	}
}
