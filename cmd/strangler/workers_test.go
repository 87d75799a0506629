package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// workerProc is one strangler backfill --worker process of a test.
type workerProc struct {
	name string
	cmd  *exec.Cmd
	logs *bytes.Buffer
}

// startWorkers starts a worker process of the race-built binary per name,
// each with args, --worker-id and env added to the test's environment.
func startWorkers(t *testing.T, args, env []string, names ...string) []*workerProc {
	t.Helper()
	var out []*workerProc
	for _, name := range names {
		w := &workerProc{name: name, logs: &bytes.Buffer{}}
		w.cmd = exec.Command(binary(t), append(append([]string{"backfill"}, args...), "--worker-id", name)...)
		w.cmd.Env = append(os.Environ(), env...)
		w.cmd.Stdout, w.cmd.Stderr = w.logs, w.logs
		if err := w.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		out = append(out, w)
	}
	return out
}

// killWhen SIGKILLs victim as soon as ready says it is in the middle of
// its work (within 30s), and fails the test, killing every worker, if it
// never is or it finished first.
func killWhen(t *testing.T, ready func() bool, victim *workerProc, all []*workerProc) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ready() {
		if time.Now().After(deadline) {
			for _, w := range all {
				w.cmd.Process.Kill()
				w.cmd.Wait()
			}
			t.Fatalf("%s never got in the middle of its work; its log:\n%s", victim.name, victim.logs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	victim.cmd.Process.Signal(syscall.SIGKILL)
	if err := victim.cmd.Wait(); err == nil {
		t.Fatalf("%s finished before it was killed; slow the run down", victim.name)
	}
}

// waitWorkers waits for each worker to finish, successfully, within three
// minutes and without a data race (a worker copied 6,000 rows through the
// API in more than a minute at load 30 with -race; a bound, not a figure).
func waitWorkers(t *testing.T, ws ...*workerProc) {
	t.Helper()
	for _, w := range ws {
		done := make(chan error, 1)
		go func() { done <- w.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker %s: %v\n%s", w.name, err, w.logs)
			}
		case <-time.After(3 * time.Minute):
			w.cmd.Process.Kill()
			<-done // the log is complete, and no longer written, once Wait returns
			t.Fatalf("worker %s did not finish; its log:\n%s", w.name, w.logs)
		}
		failOnDataRace(t, "strangler backfill --worker "+w.name, w.logs.String())
	}
}

// TestBackfillWorkersShareARunAndFinishAKilledWorkersRanges runs three
// worker processes on one run and SIGKILLs one in the middle of a range:
// the others take its ranges over once its lease runs out, the run
// completes, and a trigger on modern's patients shows no row was written
// twice.
func TestBackfillWorkersShareARunAndFinishAKilledWorkersRanges(t *testing.T) {
	// It waits on its workers, leases and a kill more than it computes:
	// with the other waiting tests, together.
	t.Parallel()
	const patients = 20000
	m := newMigration(t, patients)
	ctx := context.Background()
	if _, err := m.modern.Exec(ctx, `CREATE TABLE write_log (legacy_id bigint NOT NULL);
		CREATE FUNCTION log_write() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO write_log VALUES (NEW.legacy_id); RETURN NEW; END$$;
		CREATE TRIGGER log_write AFTER INSERT OR UPDATE ON patients FOR EACH ROW EXECUTE FUNCTION log_write();`); err != nil {
		t.Fatal(err)
	}
	ws := startWorkers(t, []string{"--config", m.config, "--run", "nightly", "--worker", "--lease", "2s", "--rate", "2500", "--progress", "none"},
		[]string{"LEGACY_DSN=" + m.env["LEGACY_DSN"], "MODERN_DSN=" + m.env["MODERN_DSN"], "BACKFILL_BATCH=200"}, "w1", "w2", "w3")
	// Kill w1 once it has copied part of a range it holds.
	killWhen(t, func() bool {
		var partial int64
		m.modern.QueryRow(ctx, `SELECT count(*) FROM strangler_backfill_checkpoints
			WHERE lease_owner = 'w1' AND last_key IS NOT NULL AND NOT done`).Scan(&partial)
		return partial > 0
	}, ws[0], ws)
	var orphaned int64
	m.modern.QueryRow(ctx, "SELECT count(*) FROM strangler_backfill_checkpoints WHERE lease_owner = 'w1' AND NOT done").Scan(&orphaned)
	waitWorkers(t, ws[1:]...)
	if orphaned == 0 {
		t.Fatal("w1 held no unfinished range when it was killed")
	}
	if got := m.count(t, "SELECT count(*) FROM strangler_backfill_checkpoints WHERE NOT done"); got != 0 {
		t.Errorf("%d key ranges are not done", got)
	}
	if got := m.count(t, "SELECT count(*) FROM patients"); got != patients {
		t.Errorf("modern has %d patients, want %d", got, patients)
	}
	if writes, rows := m.count(t, "SELECT count(*) FROM write_log"), m.count(t, "SELECT count(DISTINCT legacy_id) FROM write_log"); writes != patients || rows != patients {
		t.Errorf("modern's patients were written %d times over %d rows; want each of the %d once", writes, rows, patients)
	}
	if got := m.count(t, "SELECT count(DISTINCT name) FROM strangler_backfill_runs WHERE name = 'nightly' AND status = 'succeeded'"); got != 1 {
		t.Errorf("%d succeeded runs named nightly, want the survivors' under the one name", got)
	}
	if out, err := m.run(t, "verify", "--config", m.config); err != nil {
		t.Errorf("verify after the workers: %v\n%s", err, out)
	}
}
