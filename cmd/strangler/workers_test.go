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

// TestBackfillWorkersShareARunAndFinishAKilledWorkersRanges runs three
// worker processes on one run and SIGKILLs one in the middle of a range:
// the others take its ranges over once its lease runs out, the run
// completes, and a trigger on modern's patients shows no row was written
// twice.
func TestBackfillWorkersShareARunAndFinishAKilledWorkersRanges(t *testing.T) {
	const patients = 20000
	m := newMigration(t, patients)
	ctx := context.Background()
	if _, err := m.modern.Exec(ctx, `CREATE TABLE write_log (legacy_id bigint NOT NULL);
		CREATE FUNCTION log_write() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO write_log VALUES (NEW.legacy_id); RETURN NEW; END$$;
		CREATE TRIGGER log_write AFTER INSERT OR UPDATE ON patients FOR EACH ROW EXECUTE FUNCTION log_write();`); err != nil {
		t.Fatal(err)
	}
	start := func(id string) (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(binary(t), "backfill", "--config", m.config, "--run", "nightly", "--worker", "--worker-id", id,
			"--lease", "2s", "--rate", "2500", "--progress", "none")
		cmd.Env = append(os.Environ(), "LEGACY_DSN="+m.env["LEGACY_DSN"], "MODERN_DSN="+m.env["MODERN_DSN"], "BACKFILL_BATCH=200")
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &logs
	}
	victim, victimLogs := start("w1")
	a, aLogs := start("w2")
	b, bLogs := start("w3")
	// Kill w1 once it has copied part of a range it holds.
	deadline := time.Now().Add(30 * time.Second)
	for {
		var partial int64
		m.modern.QueryRow(ctx, `SELECT count(*) FROM strangler_backfill_checkpoints
			WHERE lease_owner = 'w1' AND last_key IS NOT NULL AND NOT done`).Scan(&partial)
		if partial > 0 {
			break
		}
		if time.Now().After(deadline) {
			for _, c := range []*exec.Cmd{victim, a, b} {
				c.Process.Kill()
				c.Wait()
			}
			t.Fatalf("w1 never held a range half copied; its log:\n%s", victimLogs)
		}
		time.Sleep(10 * time.Millisecond)
	}
	victim.Process.Signal(syscall.SIGKILL)
	if err := victim.Wait(); err == nil {
		t.Fatal("w1 finished before it was killed; slow the run down")
	}
	var orphaned int64
	m.modern.QueryRow(ctx, "SELECT count(*) FROM strangler_backfill_checkpoints WHERE lease_owner = 'w1' AND NOT done").Scan(&orphaned)
	for _, w := range []struct {
		cmd  *exec.Cmd
		logs *bytes.Buffer
		name string
	}{{a, aLogs, "w2"}, {b, bLogs, "w3"}} {
		done := make(chan error, 1)
		go func() { done <- w.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker %s: %v\n%s", w.name, err, w.logs)
			}
		case <-time.After(60 * time.Second):
			w.cmd.Process.Kill()
			<-done // the log is complete, and no longer written, once Wait returns
			t.Fatalf("worker %s did not finish; its log:\n%s", w.name, w.logs)
		}
		failOnDataRace(t, "strangler backfill --worker "+w.name, w.logs.String())
	}
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
