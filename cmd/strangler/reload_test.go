package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config"
	"strangler/config/configfile"
	"strangler/internal/filecap"
	"strangler/internal/testkit"
)

// reloadHarness runs a reloader on a configuration file, looking at it
// when the test says, and records the routes of each configuration it
// applies.
type reloadHarness struct {
	t       *testing.T
	path    string
	rl      *reloader
	w       watch
	applied [][]string // route names
}

// head is a configuration without its routes.
func reloadHead(dir string) string {
	return fmt.Sprintf("listen: \"127.0.0.1:0\"\nadmin: { listen: \"127.0.0.1:0\" }\nbackends:\n"+
		"  legacy: { url: \"http://127.0.0.1:1\" }\n  modern: { url: \"http://127.0.0.1:2\" }\n"+
		"store: \"sqlite:%s\"\nroutes:\n", filepath.Join(dir, "strangler.db"))
}

func routeLines(names ...string) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "  - { name: %s, match: \"GET /%s\", mode: legacy }\n", n, n)
	}
	return b.String()
}

func startReloadHarness(t *testing.T, routes ...string) *reloadHarness {
	dir := t.TempDir()
	h := &reloadHarness{t: t, path: filepath.Join(dir, "strangler.yaml")}
	if err := os.WriteFile(h.path, []byte(reloadHead(dir)+routeLines(routes...)), 0o644); err != nil {
		t.Fatal(err)
	}
	env := configfile.Env{Getenv: noEnv, ReadFile: filecap.Read}
	cfg, err := configfile.Load(h.path, env)
	if err != nil {
		t.Fatal(err)
	}
	var current atomic.Pointer[config.Config]
	current.Store(cfg)
	h.rl = &reloader{path: h.path, env: env, log: slog.New(slog.NewJSONHandler(io.Discard, nil)), current: &current,
		apply: func(c *config.Config) error {
			var names []string
			for _, r := range c.Routes {
				names = append(names, r.Name)
			}
			h.applied = append(h.applied, names)
			return nil
		}}
	h.rl.prepare(prometheus.NewRegistry())
	t.Cleanup(func() { signal.Stop(h.rl.hup) })
	h.w = h.rl.watch()
	return h
}

// look has the reloader look at the files n times, as its ticker would.
func (h *reloadHarness) look(n int) {
	for range n {
		h.rl.look(&h.w, false)
	}
}

// settled has the reloader look once more and returns the routes of each
// configuration applied so far.
func (h *reloadHarness) settled() [][]string {
	h.look(1)
	return h.applied
}

// write rewrites the file in place (no rename), or appends to it.
func (h *reloadHarness) write(text string, flag int) {
	h.t.Helper()
	f, err := os.OpenFile(h.path, os.O_WRONLY|flag, 0)
	if err == nil {
		_, err = f.WriteString(text)
		f.Close()
	}
	if err != nil {
		h.t.Fatal(err)
	}
}

// TestAReloadNeverAppliesAHalfWrittenFile: a file rewritten in place, in
// two writes with a pause between them, is read between the two; its
// first half is valid YAML that drops routes. Before, the first look
// applied it and the facade routed by a file nobody wrote until the next
// look; now a change is applied once the file has stayed the same for
// settleLooks looks.
func TestAReloadNeverAppliesAHalfWrittenFile(t *testing.T) {
	want := [][]string{{"a", "b", "c"}}
	t.Run("a file written in two pieces", func(t *testing.T) {
		h := startReloadHarness(t, "a", "b")
		dir := filepath.Dir(h.path)
		h.write(reloadHead(dir)+routeLines("a"), os.O_TRUNC)
		h.look(settleLooks) // the pause: as many looks as find the file the same
		h.write(routeLines("b", "c"), os.O_APPEND)
		h.look(settleLooks + 1)
		if got := h.settled(); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("applied %v, want only %v: never the first piece", got, want)
		}
	})
	t.Run("a SIGHUP sent while the file is written", func(t *testing.T) {
		h := startReloadHarness(t, "a", "b")
		dir := filepath.Dir(h.path)
		h.write(reloadHead(dir)+routeLines("a"), os.O_TRUNC)
		h.rl.look(&h.w, true) // a SIGHUP
		h.look(settleLooks - 1)
		h.write(routeLines("b", "c"), os.O_APPEND)
		h.look(settleLooks + 1)
		if got := h.settled(); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("applied %v, want only %v: never the first piece", got, want)
		}
	})
	t.Run("a file that keeps changing", func(t *testing.T) {
		h := startReloadHarness(t, "a", "b")
		dir := filepath.Dir(h.path)
		for i := range 3 * settleLooks {
			h.write(reloadHead(dir)+routeLines("a", fmt.Sprintf("x%d", i)), os.O_TRUNC)
			h.look(1)
		}
		if got := h.settled(); len(got) != 0 {
			t.Fatalf("applied %v while the file kept changing", got)
		}
		h.write(reloadHead(dir)+routeLines("a", "b", "c"), os.O_TRUNC)
		h.look(settleLooks + 1)
		if got := h.settled(); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("applied %v, want only %v once it stopped changing", got, want)
		}
	})
}

// TestAReloadLogsWhatConfigCheckWarnsAbout: a start logs each setting
// config check refuses as unsafe or warns about; a reload applied a file
// adding trusted_proxies: ["0.0.0.0/0"] (any client may then set its
// address for the lockout and the audit log) and logged nothing of it.
// It now logs the warning with its file, line and field, as a start does.
func TestAReloadLogsWhatConfigCheckWarnsAbout(t *testing.T) {
	h := startReloadHarness(t, "a")
	var logs testkit.Logs
	h.rl.log = logs.Logger(slog.LevelInfo)
	dir := filepath.Dir(h.path)
	h.write(strings.Replace(reloadHead(dir), "routes:\n", "trusted_proxies: [\"0.0.0.0/0\"]\nroutes:\n", 1)+routeLines("a", "b"), os.O_TRUNC)
	h.look(settleLooks + 1)
	if got := h.settled(); len(got) != 1 {
		t.Fatalf("applied %v, want the new file once", got)
	}
	var found bool
	for _, l := range logs.Lines(t, "") {
		if l["level"] == "WARN" && l["field"] == "trusted_proxies[0]" && l["file"] == h.path && l["line"] == float64(7) {
			found = true
		}
	}
	if !found {
		t.Errorf("the reload logged no warning naming trusted_proxies[0] at %s:7:\n%s", h.path, logs.String())
	}
}

// TestSIGHUPsMoreOftenThanTheWaitStillApply: each SIGHUP began the wait
// for the files to settle anew, so SIGHUPs sent more often than every
// 2 s (one between every two looks) applied nothing, however long they
// went on, and logged nothing. A SIGHUP now joins the wait under way:
// the change is applied settleLooks looks after the first one, and the
// log says how many it answered.
func TestSIGHUPsMoreOftenThanTheWaitStillApply(t *testing.T) {
	h := startReloadHarness(t, "a")
	var logs testkit.Logs
	h.rl.log = logs.Logger(slog.LevelInfo)
	dir := filepath.Dir(h.path)
	next := filepath.Join(dir, "next.yaml")
	if err := os.WriteFile(next, []byte(reloadHead(dir)+routeLines("a", "b")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, h.path); err != nil { // replaced whole
		t.Fatal(err)
	}
	for range settleLooks {
		h.rl.look(&h.w, true) // a SIGHUP
		h.look(1)
	}
	want := [][]string{{"a", "b"}}
	if !slices.EqualFunc(h.applied, want, slices.Equal) {
		t.Fatalf("applied %v %d looks after the first of SIGHUPs sent between every two looks, want %v", h.applied, settleLooks, want)
	}
	lines := logs.Lines(t, "config reloaded")
	if len(lines) != 1 || lines[0]["cause"] != "SIGHUP" || lines[0]["sighups"] != float64(settleLooks) {
		t.Errorf("logged %v, want one reload for %d SIGHUPs", lines, settleLooks)
	}
}
