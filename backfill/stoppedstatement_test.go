package backfill_test

import (
	"context"
	"strings"
	"testing"

	"strangler/backfill"
)

// TestAStatementTimeoutSaysSo: a target whose statement_timeout runs out
// while a batch's trigger works (a DBA's setting; 1 s here) stops the
// table saying the statement timed out. On a table with redacted columns
// it said "refused by a trigger or function (SQLSTATE 57014)", sending
// the operator to look for a trigger's refusal rather than at the
// timeout. A re-run once the batch fits copies exactly the rest.
func TestAStatementTimeoutSaysSo(t *testing.T) {
	t.Parallel()
	w := fiveTables(t)
	w.cfg.Rate = 0
	w.pg(t, `CREATE FUNCTION slow_patient() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.legacy_id = 550 THEN PERFORM pg_sleep(3); END IF; RETURN NEW; END $$`)
	w.pg(t, `CREATE TRIGGER slow_patient BEFORE INSERT OR UPDATE ON patients FOR EACH ROW EXECUTE FUNCTION slow_patient()`)
	target := *w.cfg.Target.URL
	timed := target
	q := timed.Query()
	q.Set("statement_timeout", "1000")
	timed.RawQuery = q.Encode()
	*w.cfg.Target.URL = timed
	_, err := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: discard()})
	if want := "canceling statement due to statement timeout (SQLSTATE 57014)"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("the run's error: %v\nwant it to say %q", err, want)
	}
	copied := w.count(t, "SELECT count(*) FROM patients")
	w.pg(t, "DROP TRIGGER slow_patient ON patients")
	*w.cfg.Target.URL = target
	tr := tableReport(t, w.run(t, backfill.Options{}), "patients")
	if tr.Read != 1200-copied || tr.Inserted != 1200-copied || tr.Failed != 0 {
		t.Errorf("the re-run read %d, inserted %d, failed %d; want %d, %d, 0 (the %d copied before left alone)",
			tr.Read, tr.Inserted, tr.Failed, 1200-copied, 1200-copied, copied)
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify after the re-run: %+v", d.Tables)
	}
}
