package main

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/internal/testkit"
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

// A Kubernetes ConfigMap mount: the file is a symlink through ..data to a
// folder of the version, and an update swaps ..data to a new folder by a
// rename. The reload follows the new target.
func TestAReloadFollowsAConfigMapSwap(t *testing.T) {
	h := startReloadHarness(t, "a")
	dir := filepath.Dir(h.path)
	version := func(name string, routes ...string) {
		t.Helper()
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "strangler.yaml"), []byte(reloadHead(dir)+routeLines(routes...)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(name, filepath.Join(dir, "..data_tmp")); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..v1", "a")
	if err := os.Remove(h.path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/strangler.yaml", h.path); err != nil {
		t.Fatal(err)
	}
	h.look(settleLooks + 1)
	if got := h.settled(); len(got) != 0 {
		t.Fatalf("applied %v when the mount held what was serving", got)
	}
	version("..v2", "a", "b")
	h.look(settleLooks + 1)
	want := [][]string{{"a", "b"}}
	if got := h.settled(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("applied %v, want %v: the new version", got, want)
	}
}

// The file removed, or replaced by what is no file (a folder, a named
// pipe, a device): a reload refuses it without waiting on it, and the
// configuration in force keeps serving until a file is back.
func TestAReloadRefusesWhatIsNoFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replace func(path string) error
	}{
		{"removed", os.Remove},
		{"a folder", func(p string) error { return errors.Join(os.Remove(p), os.Mkdir(p, 0o755)) }},
		{"a named pipe", func(p string) error { return errors.Join(os.Remove(p), syscall.Mkfifo(p, 0o644)) }},
		{"a symlink to /dev/zero", func(p string) error { return errors.Join(os.Remove(p), os.Symlink("/dev/zero", p)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := startReloadHarness(t, "a")
			if err := tc.replace(h.path); err != nil {
				t.Fatal(err)
			}
			h.look(settleLooks + 1)
			if got := h.settled(); len(got) != 0 {
				t.Fatalf("applied %v", got)
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(h.rl.success)
			if v := testkit.Gather(t, reg).Value("strangler_config_last_reload_successful"); v != 0 {
				t.Errorf("strangler_config_last_reload_successful is %v, want 0", v)
			}
			if err := os.RemoveAll(h.path); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(h.path, []byte(reloadHead(filepath.Dir(h.path))+routeLines("a", "b")), 0o644); err != nil {
				t.Fatal(err)
			}
			h.look(settleLooks + 1)
			want := [][]string{{"a", "b"}}
			if got := h.settled(); !slices.EqualFunc(got, want, slices.Equal) {
				t.Errorf("applied %v once a file was back, want %v", got, want)
			}
		})
	}
}

// TestAReloadSaysWhyAgainWhenTheFileIsNoFileAnotherWay: a file removed,
// then a folder put in its place, is refused twice, each time saying
// why. Before, every file that could not be read looked the same to the
// watch ("missing"), so the folder was never looked at and the log kept
// saying the file did not exist.
func TestAReloadSaysWhyAgainWhenTheFileIsNoFileAnotherWay(t *testing.T) {
	h := startReloadHarness(t, "a")
	var logs bytes.Buffer
	h.rl.log = slog.New(slog.NewJSONHandler(&logs, nil))
	if err := os.Remove(h.path); err != nil {
		t.Fatal(err)
	}
	h.look(settleLooks + 2)
	if !strings.Contains(logs.String(), "no such file") {
		t.Fatalf("log %q, want the file named missing", logs.String())
	}
	if err := os.Mkdir(h.path, 0o755); err != nil {
		t.Fatal(err)
	}
	h.look(settleLooks + 2)
	if !strings.Contains(logs.String(), "is a directory") {
		t.Errorf("log %q, want the folder named", logs.String())
	}
	if got := h.settled(); len(got) != 0 {
		t.Errorf("applied %v", got)
	}
}
