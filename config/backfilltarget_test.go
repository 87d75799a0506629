package config_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"strangler/config"
	"strangler/config/configfile"
)

// batch_timeout and sequences of the backfill section: a negative bound
// and a word that is not reset or leave are refused at their line; 0 is
// warned of (it means the default, not no bound); left out, they are 5
// minutes and reset.
func TestBackfillBatchTimeoutAndSequencesAreChecked(t *testing.T) {
	const section = hostileBackends + "backfill:\n  source: mysql://u:p@db:3306/h\n  target: postgres://u:p@pg:5432/m\n%s" +
		"  tables:\n    - { name: p, from: P, key: ID, to: p, target_key: id, columns: { id: ID } }\n"
	for _, c := range []struct{ line, field, msg string }{
		{"  batch_timeout: -1s\n", "backfill.batch_timeout", `duration "-1s" is negative`},
		{"  sequences: reste\n", "backfill.sequences", `want reset or leave, got "reste"`},
	} {
		errs := parseErrors(t, fmt.Sprintf(section, c.line))
		if len(errs) != 1 || errs[0].Line != 7 || errs[0].Field != c.field || !strings.Contains(errs[0].Msg, c.msg) {
			t.Errorf("%q: got %v, want one error at line 7 on %s saying %q", c.line, errs, c.field, c.msg)
		}
	}
	cfg, err := configfile.Parse("c.yaml", []byte(fmt.Sprintf(section, "  batch_timeout: 0s\n")), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || cfg.Warnings[0].Field != "backfill.batch_timeout" || !strings.Contains(cfg.Warnings[0].Msg, "the default, 5m0s") {
		t.Errorf("batch_timeout: 0s warned %v, want that it means the default, 5m0s", cfg.Warnings)
	}
	cfg, err = configfile.Parse("c.yaml", []byte(fmt.Sprintf(section, "")), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if b := cfg.Backfill; time.Duration(b.BatchTimeout) != config.DefaultBatchTimeout || b.Sequences != "reset" {
		t.Errorf("left out: batch_timeout %s, sequences %q; want %s and reset", time.Duration(b.BatchTimeout), b.Sequences, config.DefaultBatchTimeout)
	}
}
