package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/internal/testkit"
)

// The store takes effect on restart, so a reload that took a store the
// facade cannot open would serve on, and the next restart (a deploy, a
// rescheduled pod) would fail. Such a change is refused like any other
// invalid file: the previous configuration keeps serving, the reload
// gauge drops to 0, and the log line names the line and field, without
// the password.
func TestAReloadRefusesAStoreTheFacadeCannotOpen(t *testing.T) {
	for _, store := range []string{
		"postgres://strangler:s3cr3t-pw@127.0.0.1:5432/state?sslmode=requir",
		"sqlite:" + os.TempDir(),
	} {
		h := startReloadHarness(t, "a")
		logs := &testkit.Logs{}
		h.rl.log = logs.Logger(slog.LevelInfo)
		reg := prometheus.NewRegistry()
		reg.MustRegister(h.rl.success)
		dir := filepath.Dir(h.path)
		text := strings.Replace(reloadHead(dir), "sqlite:"+filepath.Join(dir, "strangler.db"), store, 1) + routeLines("a", "b")
		if err := os.WriteFile(h.path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		h.look(settleLooks + 1)
		if got := h.settled(); len(got) != 0 {
			t.Errorf("%s: applied %v, want the change refused", store, got)
		}
		if got := testkit.Gather(t, reg).Value("strangler_config_last_reload_successful"); got != 0 {
			t.Errorf("%s: strangler_config_last_reload_successful = %v, want 0", store, got)
		}
		lines := logs.Lines(t, "config reload refused; the previous configuration keeps serving")
		if len(lines) != 1 || !strings.Contains(lines[0]["error"].(string), h.path+":6:8: store: ") {
			t.Errorf("%s: logged %v, want one refusal naming %s:6:8 and the store", store, lines, h.path)
		}
		if strings.Contains(logs.String(), "s3cr3t") {
			t.Errorf("%s: the log shows the password: %s", store, logs.String())
		}
	}
}

// A reload applies what it can and names, in one warning, the settings
// that take effect only on restart: a rotated store_encryption key or a
// moved state snapshot changed nothing in the running facade, and the
// warning named listen addresses, the store and the workers only.
func TestAReloadNamesTheSettingsItCannotApply(t *testing.T) {
	h := startReloadHarness(t, "a")
	logs := &testkit.Logs{}
	h.rl.log = logs.Logger(slog.LevelInfo)
	dir := filepath.Dir(h.path)
	text := reloadHead(dir) + routeLines("a", "b") +
		"store_encryption: { keys: [\"d9bdc1c645398dee92031fb45a428cee06dd132d1873e23e8896364245ea859f\"] }\n" +
		"state_snapshot: " + filepath.Join(dir, "elsewhere.json") + "\n"
	if err := os.WriteFile(h.path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	h.look(settleLooks + 1)
	if got := h.settled(); len(got) != 1 || len(got[0]) != 2 {
		t.Fatalf("applied %v, want the routes a and b", got)
	}
	var named []string
	for _, l := range logs.Lines(t, "") {
		if l["level"] == "WARN" {
			named = append(named, fmt.Sprint(l["settings"]))
		}
	}
	if len(named) != 1 || named[0] != "store_encryption, state_snapshot" {
		t.Errorf("warned of %q, want one warning naming store_encryption and state_snapshot\n%s", named, logs.String())
	}
}
