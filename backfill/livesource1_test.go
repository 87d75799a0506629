package backfill_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/config"
)

// TestATypeChangedDuringTheRunStopsTheTable: the legacy team turns a
// DATETIME (wall time in source_time_zone) into a TIMESTAMP (an instant,
// which the backfill's UTC session reads as UTC's wall time) while the
// backfill copies it. Rows read after the ALTER must not be taken as the
// type the run planned: 10:00 in New York would land at 15:00 there.
func TestATypeChangedDuringTheRunStopsTheTable(t *testing.T) {
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE livesource1_Visit (Id INT PRIMARY KEY, SeenAt DATETIME NOT NULL)",
		"CREATE TABLE livesource1_visits (legacy_id int UNIQUE, seen_at timestamptz NOT NULL)",
		config.BackfillTable{Name: "visits", From: "livesource1_Visit", Key: "Id", To: "livesource1_visits", TargetKey: "legacy_id",
			Columns: cols("Id=legacy_id", "SeenAt=seen_at")})
	var values []string
	for i := 1; i <= 2000; i++ {
		values = append(values, fmt.Sprintf("(%d, '2024-01-15 10:00:00')", i))
	}
	w.exec(t, "INSERT INTO livesource1_Visit VALUES "+strings.Join(values, ", "))
	w.cfg.SourceTimeZone = "America/New_York"
	w.cfg.Batch, w.cfg.Rate = 100, 1000

	done := make(chan *backfill.Report, 1)
	go func() {
		rep, _ := backfill.Run(context.Background(), w.cfg, backfill.Options{Log: discard()})
		done <- rep
	}()
	waitFor(t, func() bool {
		var n int64
		w.modern.QueryRow(context.Background(), "SELECT count(*) FROM livesource1_visits").Scan(&n)
		return n >= 300
	})
	// The application's session is in New York (EST, -05:00 in January):
	// the ALTER keeps each row's instant.
	conn := w.legacyConn(t)
	for _, q := range []string{"SET time_zone = '-05:00'", "ALTER TABLE livesource1_Visit MODIFY SeenAt TIMESTAMP NOT NULL"} {
		if _, err := conn.ExecContext(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	rep := <-done
	if rep == nil {
		t.Fatal("the run returned no report")
	}
	const wrong = "SELECT count(*) FROM livesource1_visits WHERE seen_at <> '2024-01-15 15:00:00+00'"
	if n := w.count(t, wrong); n != 0 {
		t.Errorf("%d visits in modern are at another instant than 10:00 in New York", n)
	}
	if e := rep.Tables[0].Error; !strings.Contains(e, "seen_at") || !strings.Contains(e, "DATETIME") || !strings.Contains(e, "TIMESTAMP") {
		t.Errorf("the table's error is %q; want it stopped naming the column and both types", e)
	}

	w.cfg.Rate = 0
	w.run(t, backfill.Options{})
	if n := w.count(t, "SELECT count(*) FROM livesource1_visits"); n != 2000 {
		t.Errorf("after a re-run modern has %d visits, want 2000", n)
	}
	if n := w.count(t, wrong); n != 0 {
		t.Errorf("after a re-run %d visits in modern are at another instant", n)
	}
	if d := w.verify(t, backfill.VerifyOptions{}); d.Deviations() != 0 {
		t.Errorf("verify after the re-run: %+v", d.Tables)
	}
}

// TestADeleteIsCheckedAgainstLegacyBeforeIt: --propagate-deletes reads
// legacy's keys, then deletes the modern rows among none of them. A row
// a dual write put into both databases after the read passed its key is
// in legacy: modern's copy must stay.
func TestADeleteIsCheckedAgainstLegacyBeforeIt(t *testing.T) {
	// Most of it is spent in the source's SLEEP.
	t.Parallel()
	w := newWorld(t, fixture.Sizes{}, nil)
	w.mapTable(t, "CREATE TABLE livesource1_Dual (Id INT PRIMARY KEY, Name VARCHAR(20) NOT NULL)",
		"CREATE TABLE livesource1_duals (legacy_id int UNIQUE, name text NOT NULL)",
		// Rows from 2000 on are read slowly, so that a read of them is seen
		// in the process list.
		config.BackfillTable{Name: "duals", Query: "SELECT Id, Name FROM livesource1_Dual WHERE Id < 2000 OR SLEEP(0.002) = 0",
			Key: "Id", To: "livesource1_duals", TargetKey: "legacy_id", Columns: cols("Id=legacy_id", "Name=name")})
	var values []string
	for i := 1; i <= 3000; i++ {
		values = append(values, fmt.Sprintf("(%d, 'n')", i))
	}
	w.exec(t, "INSERT INTO livesource1_Dual VALUES "+strings.Join(values, ", "))
	w.cfg.Batch = 100
	w.run(t, backfill.Options{})
	w.exec(t, "DELETE FROM livesource1_Dual WHERE Id = 3000")

	done := make(chan *backfill.Report, 1)
	go func() {
		rep, _ := backfill.Run(context.Background(), w.cfg, backfill.Options{PropagateDeletes: true, Log: discard()})
		done <- rep
	}()
	// The keys are read alone, once the table is compared: when they
	// are read from 2000 on, key 0 is behind the read.
	waitFor(t, func() bool {
		var n int64
		w.legacy.QueryRow("SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND INFO LIKE 'SELECT src.`Id` FROM (%' AND INFO LIKE '%src.`Id` > ?%'").Scan(&n)
		return n > 0
	})
	w.exec(t, "INSERT INTO livesource1_Dual VALUES (0, 'dual')")
	w.pg(t, "INSERT INTO livesource1_duals VALUES (0, 'dual')")
	rep := <-done
	if rep == nil {
		t.Fatal("the run returned no report")
	}
	if d := rep.Tables[0]; d.Deleted != 1 || d.Error != "" {
		t.Errorf("the run deleted %d rows (%v), error %q; want only 3000, gone from legacy", d.Deleted, d.DeletedKeys, d.Error)
	}
	if n := w.count(t, "SELECT count(*) FROM livesource1_duals WHERE legacy_id = 0"); n != 1 {
		t.Error("row 0, in legacy, was deleted from modern")
	}
	if n := w.count(t, "SELECT count(*) FROM livesource1_duals WHERE legacy_id = 3000"); n != 0 {
		t.Error("row 3000, gone from legacy, is still in modern")
	}
}
