package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAShareFinerThanTheSplitIsRefusedEverywhere: the facade splits a
// route's traffic in 0.01% steps. A finer percent was taken from the CLI
// and shown as written while the router sent its nearest step: at
// --percent 99.996 every request went to modern and routes report said
// "percent 99.996: legacy still serves part of the traffic". Ramp steps
// were read by another parser, which took 1e1 and 0x1p4 that --percent
// refuses.
func TestAShareFinerThanTheSplitIsRefusedEverywhere(t *testing.T) {
	f := startRoutesFacade(t)
	strangler := cli(f.admin)
	r := strangler(t, "routes", "set", "get-visit", "--mode", "modern", "--percent", "99.996", "--reason", "ticket 1")
	if r.err == nil || !strings.Contains(r.err.Error(), "percent 99.996 is finer than the 0.01% steps traffic is split in; the nearest is 100") {
		t.Errorf("--percent 99.996: got %v (stdout %q), want a refusal naming the nearest share, 100", r.err, r.stdout)
	}
	r = strangler(t, "routes", "ramp", "get-visit", "--steps", "60,1e2", "--every", "30m", "--reason", "ticket 1")
	var u usageError
	if r.err == nil || !errors.As(r.err, &u) || !strings.Contains(r.err.Error(), `step 2, "1e2", is not a percent`) {
		t.Errorf("--steps 60,1e2: got %v, want a usage error naming step 2", r.err)
	}
	out := strangler(t, "routes", "list").must(t)
	if got := row(t, out, "get-visit"); got[6] != "fallback" || got[7] != "50%" {
		t.Errorf("get-visit after the refusals: got %v, want fallback at 50%%, as the file has it", got)
	}
	strangler(t, "routes", "set", "get-visit", "--mode", "modern", "--percent", "99.99", "--reason", "ticket 1").must(t)
}

// TestWhatConfigPrintShowsConfigCheckTakes: config print wrote a small
// rate as 1e-05 and a percent of -0 as -0; config check refused its own
// output ("invalid percent "1e-05"; want a number ... in decimal digits").
func TestWhatConfigPrintShowsConfigCheckTakes(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, filepath.Join(dir, "strangler.yaml"), "http://legacy.internal", "http://modern.internal",
		"  - { name: a, match: \"GET /a\", mode: fallback, percent: -0, gates: { max_mismatch_rate: 0.00001, max_fallback_rate: 0.0005% } }\n")
	printed := cliEnv(nil)(t, "config", "print", path).must(t)
	if strings.Contains(printed, "-0") || strings.Contains(printed, "e-") {
		t.Errorf("config print shows a negative zero or an exponent:\n%s", printed)
	}
	again := filepath.Join(dir, "printed.yaml")
	if err := os.WriteFile(again, []byte(printed), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := cliEnv(nil)(t, "config", "check", again); r.err != nil {
		t.Errorf("config check of config print's output: %v\n%s%s", r.err, r.stdout, r.stderr)
	}
}

// TestAnAdminURLsPasswordIsNeverPrinted: an --admin (or STRANGLER_ADMIN)
// URL with a password is refused, as the token comes only from
// STRANGLER_ADMIN_TOKEN. routes redacted the password in the refusal, but
// healthcheck, which checks the same flag on its own and runs in a
// container's HEALTHCHECK whose output the orchestrator keeps, printed it;
// and a URL refused for its scheme or as unparsable was quoted whole by
// both.
func TestAnAdminURLsPasswordIsNeverPrinted(t *testing.T) {
	for _, admin := range []string{"http://ops:s3cret@127.0.0.1:9901", "ftp://ops:s3cret@127.0.0.1:9901", "http://ops:s3 cret@127.0.0.1:9901", "http://ops:s3cret@127.0.0.1:9901/?x=1"} {
		for _, args := range [][]string{{"healthcheck", "--admin", admin}, {"routes", "list", "--admin", admin}, {"healthcheck"}} {
			r := cliEnv(map[string]string{"STRANGLER_ADMIN": admin, "STRANGLER_ADMIN_TOKEN": aliceToken})(t, args...)
			var u usageError
			if r.err == nil || !errors.As(r.err, &u) {
				t.Errorf("%s with %q: got %v, want a usage error", args[0], admin, r.err)
				continue
			}
			if strings.Contains(r.err.Error(), "s3") || strings.Contains(r.stdout+r.stderr, "s3") {
				t.Errorf("%s with %q shows the password: %v", args[0], admin, r.err)
			}
		}
	}
}
