package backfill_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// TestARunWhoseDatabaseIsGoneStopsOnce: a target PostgreSQL that goes
// away for good while a run copies has every table's rows, checkpoints
// and ledger out of reach, and a source MariaDB gone has every table's
// rows. The range that finds it gone resumes for its half minute; then
// the run stops, every table not done with it, saying which database is
// gone. It stopped each table alone: each queued after it waited out
// half a minute of futile resumptions of its own (here four more: 2 min
// 36 s and 25 resumptions to learn what the first 31 s told; a run of a
// hundred tables took most of an hour). A worker of a shared run went on
// to lease its next range, and resumed that too (1 min 2 s, 10).
func TestARunWhoseDatabaseIsGoneStopsOnce(t *testing.T) {
	for _, c := range []struct {
		side   string
		worker bool
	}{{"target", false}, {"source", false}, {"target", true}} {
		side, name := c.side, "the "+c.side
		if c.worker {
			name = "a worker's " + c.side
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, fixture.Sizes{Patients: 1200}, nil)
			w.cfg.Tables = w.cfg.Tables[:1]
			w.cfg.Batch, w.cfg.Rate, w.cfg.Concurrency = 100, 200, 1
			for i := range 4 {
				w.exec(t, fmt.Sprintf("CREATE TABLE Gone%d (Id INT PRIMARY KEY, Body TEXT)", i))
				w.exec(t, fmt.Sprintf("INSERT INTO Gone%d VALUES (1, 'a'), (2, 'b')", i))
				w.pg(t, fmt.Sprintf("CREATE TABLE gone%d (legacy_id bigint UNIQUE, body text)", i))
				w.cfg.Tables = append(w.cfg.Tables, config.BackfillTable{Name: fmt.Sprintf("gone%d", i), From: fmt.Sprintf("Gone%d", i),
					Key: "Id", To: fmt.Sprintf("gone%d", i), TargetKey: "legacy_id", Columns: cols("Id=legacy_id", "Body=body")})
			}
			u := w.cfg.Source.URL
			if side == "target" {
				u = w.cfg.Target.URL
			}
			proxy := proxied(t, u)
			var logs testkit.Logs
			opts := backfill.Options{Log: logs.Logger(slog.LevelInfo)}
			if c.worker {
				opts.Worker, opts.Run, opts.WorkerID = true, "gone", "w1"
			}
			done := w.startRun(opts)
			waitFor(t, func() bool { return w.count(t, "SELECT count(*) FROM patients") >= 300 })
			proxy.Cut()
			began := time.Now()
			res := stopped(t, done, 10*time.Minute, "its "+side+" gone")
			// A worker's range stops when its lease cannot be renewed for
			// three quarters of its length, before its fifth resumption.
			waited := "a key range of patients resumed 5 times over 31s"
			if c.worker {
				waited = fmt.Sprintf("the lease (%s) of a key range of patients could not be renewed", backfill.DefaultLease)
			}
			want := "the " + side + " database was still out of reach after " + waited
			if res.err == nil || !strings.Contains(res.err.Error(), want) {
				t.Errorf("the run's error: %v\nwant it to say %q", res.err, want)
			}
			var text strings.Builder
			if res.rep != nil {
				res.rep.WriteText(&text)
			}
			if want := "stopped early: " + want; !strings.Contains(text.String(), want) {
				t.Errorf("the report:\n%s\nwant it to say %q", text.String(), want)
			}
			// Only the range that found the database gone resumed, its five
			// times; no table queued after it.
			if n := len(logs.Lines(t, "backfill connection lost; resuming from the checkpoint")); n > 5 || !c.worker && n != 5 {
				t.Errorf("%d resumptions logged in the %s after the %s went away, want the 5 (a worker's: at most 5) of the range that found it gone",
					n, time.Since(began).Round(time.Second), side)
			}
			proxy.Restore()
			w.rerunCopiesAll(t)
		})
	}
}

// proxied puts a proxy in front of the database u names (w's source's
// or target's URL), which w's runs reach through it from then on.
func proxied(t *testing.T, u *url.URL) *testdb.Proxy {
	t.Helper()
	proxy, via := testdb.NewProxy(t, u.String())
	pu, err := url.Parse(via)
	if err != nil {
		t.Fatal(err)
	}
	*u = *pu
	return proxy
}

// runResult is what a run started by startRun ended with.
type runResult struct {
	rep *backfill.Report
	err error
}

// startRun runs w's backfill with opts on a goroutine of its own; its end
// comes on the channel returned.
func (w *world) startRun(opts backfill.Options) <-chan runResult {
	done := make(chan runResult, 1)
	go func() {
		rep, err := backfill.Run(context.Background(), w.cfg, opts)
		done <- runResult{rep, err}
	}()
	return done
}

// stopped waits for the run done to end, at most limit, failing the test
// saying what the run still waits on.
func stopped(t *testing.T, done <-chan runResult, limit time.Duration, waitsOn string) runResult {
	t.Helper()
	select {
	case res := <-done:
		return res
	case <-time.After(limit):
		t.Fatalf("the run still waits on %s %v on", waitsOn, limit)
		return runResult{}
	}
}

// rerunCopiesAll runs w's backfill again, unpaced, once the database a
// test took away is back: no row fails, and verify finds no deviation.
func (w *world) rerunCopiesAll(t *testing.T) {
	t.Helper()
	w.cfg.Rate = 0
	for _, tr := range w.run(t, backfill.Options{}).Tables {
		if tr.Failed != 0 {
			t.Errorf("a re-run: %s failed %d rows, want none", tr.Table, tr.Failed)
		}
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify after the re-run: %+v", d.Tables)
	}
}
