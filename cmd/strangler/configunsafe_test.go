package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"strangler/config/configfile"
	"strangler/internal/filecap"
)

// unsafeYAML turns protections off on lines 4, 6 and 11: every address
// as the admin listener's proxies, an admin token of one character, an
// all-zero force_token_key.
const unsafeYAML = `listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
  trusted_proxies: ["0.0.0.0/0"]
  tokens:
    - { name: bot, token: "0000000000000000", role: operator }
backends:
  legacy: { url: "http://127.0.0.1:1" }
  modern: { url: "http://127.0.0.1:1" }
store: "sqlite:%s"
force_token_key: "0000000000000000000000000000000000000000000000000000000000000000"
routes:
  - { name: p, match: "GET /p", mode: legacy }
`

// unwiseYAML is valid but unwise on lines 4 and 6: a public network as
// the admin listener's proxies, a token whose expires has passed.
const unwiseYAML = `listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
  trusted_proxies: ["8.8.8.0/24"]
  tokens:
    - { name: bot, token: "bot-token-0123456789", role: operator, expires: 2020-01-31 }
backends:
  legacy: { url: "http://127.0.0.1:1" }
  modern: { url: "http://127.0.0.1:1" }
routes:
  - { name: p, match: "GET /p", mode: legacy }
`

// TestConfigCheckRefusesWhatTurnsAProtectionOff: config check said ok
// of an all-zero force_token_key, an admin token of one character
// repeated and 0.0.0.0/0 as trusted proxies. It now refuses each, at its
// file, line and field, and fails; the facade still starts with such a
// file (one that ran with it keeps running after an upgrade) and logs
// each as a warning with its file, line and field.
func TestConfigCheckRefusesWhatTurnsAProtectionOff(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "strangler.yaml")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(unsafeYAML, filepath.Join(dir, "strangler.db"))), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cliEnv(nil)(t, "config", "check", path)
	if r.err == nil || strings.Contains(r.stdout, "ok") {
		t.Errorf("config check: got %v, %q; want a failure, no ok", r.err, r.stdout)
	}
	for _, want := range []string{
		`:4:\d+: admin\.trusted_proxies\[0\]: 0\.0\.0\.0/0 is every address`,
		`:6:\d+: admin\.tokens\[0\]\.token: is one character repeated`,
		`:11:\d+: force_token_key: is one byte repeated`,
	} {
		if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(path) + want).MatchString(r.stderr) {
			t.Errorf("config check's output lacks %s%s:\n%s", path, want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "warning") || strings.Contains(r.stderr, "0000000000000000") {
		t.Errorf("config check calls a refusal a warning, or shows a secret:\n%s", r.stderr)
	}

	cfg, err := configfile.Load(path, configfile.Env{Getenv: noEnv, ReadFile: filecap.Read})
	if err != nil || len(cfg.Unsafe) != 3 {
		t.Fatalf("load: %v, %v; want three unsafe entries", err, cfg)
	}
	f := startRun(t, "serve", "--config", path)
	for _, u := range cfg.Unsafe {
		f.logs.waitFor(t, u.Msg, map[string]any{"level": "WARN", "file": path, "line": float64(u.Line), "field": u.Field}, 10*time.Second)
	}
}

// TestConfigCheckWarnsAndStrictFails: a token whose expires has passed
// (which the facade refuses) and a public network as trusted proxies
// are warnings at their file, line and field; the file passes, unless
// --strict, which fails on any warning.
func TestConfigCheckWarnsAndStrictFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "strangler.yaml")
	if err := os.WriteFile(path, []byte(unwiseYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	wants := []string{
		`:4:\d+: admin\.trusted_proxies\[0\]: warning: 8\.8\.8\.0/24 holds public addresses`,
		`:6:\d+: admin\.tokens\[0\]\.expires: warning: 2020-01-31 has passed`,
	}
	for _, strict := range []bool{false, true} {
		args := []string{"config", "check", path}
		if strict {
			args = []string{"config", "check", "--strict", path}
		}
		r := cliEnv(nil)(t, args...)
		if passed := r.err == nil && r.stdout == path+": ok, 1 routes\n"; passed == strict {
			t.Errorf("%q: got %v, %q; want it to pass: %v", args, r.err, r.stdout, !strict)
		}
		if strict && (r.err == nil || !strings.Contains(r.err.Error(), "--strict")) {
			t.Errorf("%q: got %v, want an error saying --strict failed it", args, r.err)
		}
		for _, want := range wants {
			if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(path) + want).MatchString(r.stderr) {
				t.Errorf("%q's output lacks %s%s:\n%s", args, path, want, r.stderr)
			}
		}
	}
}

// TestConfigCheckListsWhatItFindsInFileOrder: what is unsafe and what is
// unwise are listed together by line, so the output reads down the file:
// here the warnings of lines 4 and 6 before the refusal of line 10.
func TestConfigCheckListsWhatItFindsInFileOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "strangler.yaml")
	yaml := strings.Replace(unwiseYAML, "routes:", "force_token_key: \""+strings.Repeat("0", 64)+"\"\nroutes:", 1)
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	r := cliEnv(nil)(t, "config", "check", path)
	lines := regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(path)+`:(\d+):`).FindAllStringSubmatch(r.stderr, -1)
	var got []string
	for _, l := range lines {
		got = append(got, l[1])
	}
	if strings.Join(got, ",") != "4,6,10" {
		t.Errorf("config check listed lines %v, want 4,6,10 (file order):\n%s", got, r.stderr)
	}
}
