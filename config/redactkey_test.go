package config_test

import (
	"strings"
	"testing"

	"strangler/config/configfile"
)

// TestRedactingTheTargetKeyIsWarnedAbout: the ledger, reports and verify
// name rows by their key in clear, so a redact list naming the key
// promises what it cannot keep; config check says so, at the entry.
func TestRedactingTheTargetKeyIsWarnedAbout(t *testing.T) {
	yaml := `backends:
  legacy: { url: "http://legacy:8080" }
  modern: { url: "http://modern:9090" }
backfill:
  source: "mysql://legacy@db:3306/legacy"
  target: "postgres://modern@db:5432/modern"
  tables:
    - name: patients
      from: Patient
      key: Mrn
      to: patients
      target_key: mrn
      columns: { mrn: Mrn, surname: Surname }
      redact:
        - surname
        - mrn
`
	cfg, err := configfile.Parse("b.yaml", []byte(yaml), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 {
		t.Fatalf("got warnings %v, want one", cfg.Warnings)
	}
	if w := cfg.Warnings[0]; w.Line != 16 || w.Field != "backfill.tables[0].redact[1]" || !strings.Contains(w.Msg, `"mrn" is the target key`) || !strings.Contains(w.Msg, "verify") {
		t.Errorf("got warning %q, want one at line 16 on backfill.tables[0].redact[1] saying the key stays in clear", w)
	}
}
