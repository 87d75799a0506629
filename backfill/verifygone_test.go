package backfill_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/internal/testkit"
)

// TestAVerifyWhoseTargetGoesSaysSo: a target gone while verify compares
// a table stops it once its comparison has resumed as a backfill's range
// does, saying which database is gone and what verify did; one whose
// connection breaks and comes back compares the table again and finds
// what it would have. It stopped at once with "compare patients:
// unexpected EOF", naming no database and resuming nothing.
func TestAVerifyWhoseTargetGoesSaysSo(t *testing.T) {
	for _, c := range []struct {
		name string
		gone bool
	}{
		{"gone", true},
		{"back", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := fiveTables(t)
			w.cfg.Rate = 0
			w.run(t, backfill.Options{})
			w.pg(t, "DELETE FROM patients WHERE legacy_id IN (SELECT legacy_id FROM patients ORDER BY legacy_id LIMIT 3)")
			proxy := proxied(t, w.cfg.Target.URL)
			// Only a comparison's chunk sends it.
			const marker = "cross join lateral"
			if c.gone {
				proxy.GoneOn(marker)
			} else {
				proxy.CutOn(marker)
			}
			var logs testkit.Logs
			opts := backfill.QuickVerify(backfill.VerifyOptions{Log: logs.Logger(slog.LevelInfo)})
			rep, err := backfill.Verify(context.Background(), w.cfg, opts)
			if proxy.CutsOn() != 1 {
				t.Fatalf("the target never saw %q", marker)
			}
			resumptions := len(logs.Lines(t, "backfill connection lost; resuming from the checkpoint"))
			if !c.gone {
				if err != nil || rep.Deviations() != 3 || resumptions != 1 {
					t.Errorf("verify: %v, %d resumptions, want it to resume once and find the 3 rows deleted (report: %+v)", err, resumptions, rep)
				}
				return
			}
			want := "the target database was still out of reach after the comparison of patients resumed 5 times over 310ms (last: "
			if err == nil || !strings.Contains(err.Error(), want) ||
				!strings.Contains(err.Error(), "verify stopped, comparing no table after it; run it again once the database answers") {
				t.Errorf("verify: %v\nwant it to say %q and what verify did", err, want)
			}
			if resumptions != 5 {
				t.Errorf("%d resumptions logged, want 5", resumptions)
			}
		})
	}
}
