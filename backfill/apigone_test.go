package backfill_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"strangler/backfill"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
	"strangler/modern"
)

// TestAnAPIRunWhoseDatabaseIsGoneSaysSo: the state store or the source
// of a run through the API gone for good, while it sends a table or, as
// a worker, leases the table's groups, stops the run once its
// resumptions are spent, saying which database is gone and what found
// it so, as a run into the database does. It stopped with the driver's
// error ("lease groups" with "failed to connect to …"), naming neither.
func TestAnAPIRunWhoseDatabaseIsGoneSaysSo(t *testing.T) {
	for _, c := range []struct {
		name, side string
		worker     bool
		// marker, when set, takes the database away at the statement
		// that sends it (testdb.Proxy.GoneOn); else once 200 rows were
		// applied.
		marker string
		waited string
	}{
		{"the state store while sending", "state store", false, "", "the sending of patients resumed 5 times over 310ms"},
		{"the source while sending", "source", false, "", "the sending of patients resumed 5 times over 310ms"},
		{"a worker's state store as it leases groups", "state store", true, "for update skip locked",
			"this worker's leasing of groups of patients resumed 5 times over 310ms"},
		{"a worker's state store while sending a group", "state store", true, "", "group "},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newAPIWorld(t, 1000, 10, modern.Faults{})
			cfg := w.config(t)
			cfg.Batch, cfg.Rate = 100, 500
			cfg.Before, cfg.After, cfg.WaitUntil = nil, nil, nil
			storeURL := testdb.Postgres(t)
			var proxy *testdb.Proxy
			if c.side == "state store" {
				proxy, storeURL = testdb.NewProxy(t, storeURL)
			} else {
				proxy = proxied(t, cfg.Source.URL)
			}
			if c.marker != "" {
				proxy.GoneOn(c.marker)
			}
			st := openStore(t, storeURL)
			var logs testkit.Logs
			opts := backfill.QuickResumption(backfill.Options{APILedger: st, Hasher: st.Hasher(), Log: logs.Logger(slog.LevelInfo)})
			if c.worker {
				opts.Worker, opts.Run, opts.WorkerID = true, "gone", "w1"
			}
			done := make(chan runResult, 1)
			go func() {
				rep, err := backfill.Run(context.Background(), cfg, opts)
				done <- runResult{rep, err}
			}()
			if c.marker == "" {
				testkit.Eventually(t, time.Minute, "200 imports", func() bool { return w.imported(t) >= 200 })
				proxy.Cut()
			}
			res := stopped(t, done, 2*time.Minute, "its "+c.side+" gone")
			if c.marker != "" && proxy.CutsOn() != 1 {
				t.Fatalf("the %s never saw %q", c.side, c.marker)
			}
			want := fmt.Sprintf("the %s database was still out of reach after %s", c.side, c.waited)
			if res.err == nil || !strings.Contains(res.err.Error(), want) || strings.Count(res.err.Error(), "out of reach") != 1 {
				t.Errorf("the run's error: %v\nwant it to say %q, once\n%s", res.err, want, logs.String())
			}
		})
	}
}
