package backfill_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
	"strangler/modern"
)

// TestThePlanningResumesAfterALostConnection: a connection to the source
// or the target lost while a run or verify plans (reading a table's
// columns, checking its key, reading a sources_query's catalogue), as
// when the server restarts at that instant, is resumed as a key range's
// copy is: the planning is done again and the run copies every row. It
// stopped the run at once ("backfill.tables[0].from: reading the source:
// invalid connection: the source did not answer within batch_timeout
// (5m0s), or its connection broke", "backfill.sources_query.query:
// invalid connection …", and the key's check said only
// "backfill.tables[0].key: invalid connection"). A database gone for
// good stops it once the resumptions are spent, saying which database
// is gone and that the planning found it so.
func TestThePlanningResumesAfterALostConnection(t *testing.T) {
	for _, c := range []struct {
		name string
		// side is the database taken away: "source", "target" or
		// "catalogue" (a sources_query's, the source's server).
		side, marker string
		verify, api  bool
		// gone takes it away for good; want is then what the error says.
		gone bool
		want string
	}{
		{name: "the source as a table's columns are read", side: "source", marker: "limit 0"},
		{name: "the source as the key is checked", side: "source", marker: "information_schema.statistics"},
		{name: "the target as a table's columns are read", side: "target", marker: "to_regclass($1)"},
		{name: "the catalogue", side: "catalogue", marker: "from tenants"},
		{name: "verify's source", side: "source", marker: "limit 0", verify: true},
		{name: "an API run's source", side: "source", marker: "limit 0", api: true},
		{name: "the source gone", side: "source", marker: "information_schema.statistics", gone: true,
			want: "the source database was still out of reach after the planning resumed 5 times over 310ms (last: testdata/reference.yaml:15:13: backfill.tables[0].from: reading the source: "},
		{name: "the catalogue gone", side: "catalogue", marker: "from tenants", gone: true,
			want: "the sources_query catalogue database was still out of reach after the reading of its sources resumed 5 times over 310ms"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if c.api {
				apiPlanningResumes(t, c.marker)
				return
			}
			w := newWorld(t, fixture.Sizes{Patients: 50}, nil)
			w.cfg.Tables = w.cfg.Tables[:1]
			var proxy *testdb.Proxy
			switch c.side {
			case "target":
				proxy = proxied(t, w.cfg.Target.URL)
			case "catalogue":
				w.exec(t, "CREATE TABLE tenants (name VARCHAR(50), dsn TEXT)")
				w.exec(t, "INSERT INTO tenants VALUES ('clinic-a', ?)", w.cfg.Source.String())
				catalogue := w.cfg.Source
				proxy = proxied(t, catalogue.URL)
				w.cfg.Source = config.DatabaseURL{}
				w.cfg.SourcesQuery = &config.SourcesQuery{DSN: catalogue, Query: "SELECT name, dsn FROM tenants"}
			default:
				proxy = proxied(t, w.cfg.Source.URL)
			}
			if c.verify {
				w.run(t, backfill.Options{})
			}
			if c.gone {
				proxy.GoneOn(c.marker)
			} else {
				proxy.CutOn(c.marker)
			}
			var logs testkit.Logs
			var err error
			if c.verify {
				var d *backfill.VerifyReport
				if d, err = backfill.Verify(context.Background(), w.cfg, backfill.QuickVerify(backfill.VerifyOptions{Log: logs.Logger(slog.LevelInfo)})); err == nil && d.Deviations() != 0 {
					t.Errorf("verify: %+v, want no deviation", d.Tables)
				}
			} else {
				_, err = backfill.Run(context.Background(), w.cfg, backfill.QuickResumption(backfill.Options{Log: logs.Logger(slog.LevelInfo)}))
			}
			if proxy.CutsOn() != 1 {
				t.Fatalf("the %s never saw %q", c.side, c.marker)
			}
			if c.gone {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("the run's error: %v\nwant it to say %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("the run: %v, want the planning resumed", err)
			}
			if n := len(logs.Lines(t, "backfill connection lost; resuming from the checkpoint")); n != 1 {
				t.Errorf("%d resumptions logged, want the 1 of the planning", n)
			}
			if n := w.count(t, "SELECT count(*) FROM patients"); n != 50 && !c.verify {
				t.Errorf("%d patients copied, want 50", n)
			}
		})
	}
}

// apiPlanningResumes: a run through the API whose source connection
// breaks as it plans (at the statement that sends marker) plans again
// and sends every row.
func apiPlanningResumes(t *testing.T, marker string) {
	const rows = 100
	w := newAPIWorld(t, rows, 5, modern.Faults{})
	cfg := w.config(t)
	cfg.Before, cfg.After, cfg.WaitUntil = nil, nil, nil
	proxy := proxied(t, cfg.Source.URL)
	proxy.CutOn(marker)
	rep, err := backfill.Run(context.Background(), cfg, backfill.QuickResumption(backfill.Options{APILedger: w.store, Hasher: w.store.Hasher(), Log: discard()}))
	if proxy.CutsOn() != 1 {
		t.Fatalf("the source never saw %q", marker)
	}
	if err != nil {
		t.Fatalf("the run: %v, want the planning resumed", err)
	}
	if tr := rep.Tables[0]; tr.Read != rows {
		t.Errorf("the run read %d rows, want %d", tr.Read, rows)
	}
	w.appliedOnce(t, "", accepted(rows))
}
