package backfill_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestASilentDatabaseStopsVerifyAndPlanningWithinTheBound: batch_timeout
// bounded a run's batches and the statements a run wrapped, not the rest
// of what reaches the target: the planning, verify's comparison, its
// search for extra rows, a re-run's comparison. A target that went silent
// (packets dropped: nothing refused, TCP waiting some fifteen minutes,
// through this proxy for ever) while one of them waited held `strangler
// verify` and `strangler backfill` on it. Every read and write to the
// target now waits batch_timeout at most, as the source's already did:
// the command stops saying so, and runs again once the database answers.
func TestASilentDatabaseStopsVerifyAndPlanningWithinTheBound(t *testing.T) {
	cases := []struct {
		name, side, marker string
		backfill           bool // a re-run rather than verify
		planning           bool // every table, none of them reached
	}{
		{"verify planning on the target", "target", "to_regclass", false, true},
		{"verify comparing on the target", "target", "strangler_compare_", false, false},
		{"verify's extras on the target", "target", "strangler_seen_", false, false},
		{"a re-run's planning on the target", "target", "to_regclass", true, true},
		{"a re-run's comparison on the target", "target", "strangler_compare_", true, false},
		{"a re-run's extras on the target", "target", "strangler_seen_", true, false},
		{"verify planning on the source", "source", "information_schema.statistics", false, true},
		{"a re-run's planning on the source", "source", "information_schema.statistics", true, true},
		{"verify reading the source", "source", "limit ?", false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Most of each is spent waiting out the bound.
			t.Parallel()
			w := newWorld(t, fixture.Sizes{Patients: 300}, nil)
			extra := 0
			if !c.planning {
				w.cfg.Tables = w.cfg.Tables[:1]
			}
			w.run(t, backfill.Options{})
			if !c.planning {
				// A row legacy deleted since: modern has one extra to look for.
				w.exec(t, "DELETE FROM Patient ORDER BY PatientSerNum LIMIT 1")
				extra = 1
			}
			// Each try, and the ping after them, waits out the bound: a
			// short one keeps the case short (it was 3 s: ~25 s a case).
			w.cfg.BatchTimeout = config.Duration(time.Second)
			u := w.cfg.Source.URL
			if c.side == "target" {
				u = w.cfg.Target.URL
			}
			proxy := proxied(t, u)
			proxy.MuteOn(c.marker)
			done := make(chan error, 1)
			go func() {
				var err error
				// What waited is resumed, and found silent again: the
				// resumptions' pauses need not be waited out.
				if c.backfill {
					_, err = backfill.Run(context.Background(), w.cfg, backfill.QuickResumption(backfill.Options{Log: discard()}))
				} else {
					_, err = backfill.Verify(context.Background(), w.cfg, backfill.QuickVerify(backfill.VerifyOptions{Log: discard()}))
				}
				done <- err
			}()
			var err error
			select {
			case err = <-done:
			case <-time.After(4 * time.Minute):
				t.Fatalf("still waiting on the silent %s 4 minutes on", c.side)
			}
			want := "the target did not answer within batch_timeout (1s)"
			if c.side == "source" {
				want = "the source did not answer within batch_timeout (1s)"
			}
			// Once: the planning stops at the first table that waited,
			// where each of the others waited as long to fail alike.
			if err == nil || strings.Count(err.Error(), want) != 1 {
				t.Errorf("error: %v\nwant it to say %q once", err, want)
			}
			proxy.Reset()
			if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != int64(extra) || d.Tables[0].Extra != int64(extra) {
				t.Errorf("verify once the %s answers: %+v, want %d extra rows", c.side, d.Tables, extra)
			}
		})
	}
}

// TestASilentCatalogueStopsTheRunWithinTheBound: the database a
// sources_query reads the sources from was opened without the bound the
// sources themselves have, so a catalogue gone silent held the run until
// TCP gave up (through this proxy, for ever). Its reads and writes now
// wait batch_timeout at most too, and the error names the catalogue, not
// the source (which it said: "the source did not answer within
// batch_timeout"), as the run never reached a source.
func TestASilentCatalogueStopsTheRunWithinTheBound(t *testing.T) {
	// Most of it is spent waiting out the bound.
	t.Parallel()
	w := newWorld(t, fixture.Sizes{}, nil)
	w.exec(t, "CREATE TABLE tenants (name VARCHAR(50), dsn TEXT)")
	w.exec(t, "INSERT INTO tenants VALUES ('clinic-a', ?)", w.cfg.Source.String())
	catalogue := w.cfg.Source
	proxy := proxied(t, catalogue.URL)
	w.cfg.Source = config.DatabaseURL{}
	w.cfg.SourcesQuery = &config.SourcesQuery{DSN: catalogue, Query: "SELECT name, dsn FROM tenants"}
	// Each of the six tries, and the ping after them, waits out the
	// bound: a short one keeps the test short.
	w.cfg.BatchTimeout = config.Duration(time.Second)
	proxy.MuteOn("from tenants")
	// What waited is resumed, and found silent again: the resumptions'
	// pauses need not be waited out.
	done := w.startRun(backfill.QuickResumption(backfill.Options{Log: discard()}))
	res := stopped(t, done, 4*time.Minute, "its silent catalogue")
	want := "the sources_query catalogue did not answer within batch_timeout (1s)"
	if res.err == nil || !strings.Contains(res.err.Error(), want) || strings.Contains(res.err.Error(), "the source did not answer") {
		t.Errorf("the run's error: %v\nwant it to say %q, and nothing of the source", res.err, want)
	}
}
