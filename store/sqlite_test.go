package store

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/domain"
)

func TestSQLiteSettings(t *testing.T) {
	t.Parallel()
	pragmas := func(sync string) map[string]string {
		return map[string]string{"journal_mode": "wal", "synchronous": sync, "foreign_keys": "1", "busy_timeout": "10000"}
	}
	for _, tc := range []struct {
		option string
		want   map[string]string
	}{
		{"", pragmas("1")},           // NORMAL: durable when the process is killed
		{"?sync=full", pragmas("2")}, // FULL: durable when the machine loses power
	} {
		s := openStore(t, backends()[0].fresh(t)+tc.option, newClock())
		for pragma, want := range tc.want {
			t.Run("with "+tc.option+" "+pragma+" is "+want, func(t *testing.T) {
				var got string
				if err := s.db.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil {
					t.Fatal(err)
				}
				if strings.ToLower(got) != want {
					t.Errorf("got %s, want %s", got, want)
				}
			})
		}
	}
	if _, err := Open(context.Background(), "sqlite:"+t.TempDir()+"/x.db?sync=sometimes", nil); err == nil {
		t.Error("an unknown sqlite option was accepted")
	}
}

// TestSQLiteNeverBusy hammers one file from many goroutines of the owning
// Store and, at the same time, from a second Store on the same file (as an
// operator's tool would): every call succeeds, none sees SQLITE_BUSY.
func TestSQLiteNeverBusy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := newClock()
	dsn := backends()[0].fresh(t)
	owner, other := openStore(t, dsn, clk), openStore(t, dsn, clk)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	try := func(err error) {
		if err != nil {
			errs <- err
		}
	}
	for g := range 8 {
		s := owner
		if g%4 == 3 {
			s = other
		}
		wg.Go(func() {
			for i := range 4 {
				id := fmt.Sprintf("g%d-%d", g, i)
				try(s.BeginWrite(ctx, intent(id, fmt.Sprintf("update-patient/%d", i)), time.Minute))
				try(s.RecordOutcome(ctx, id, domain.Outcome{Status: 200}))
				rs, err := s.ClaimRepairs(ctx, id, 2, time.Minute)
				try(err)
				for _, r := range rs {
					try(s.CompleteRepair(ctx, r.ID, id))
				}
				try(s.AddCounts(ctx, []domain.HourCount{{Route: "get", Hour: t0, Requests: 1}}))
				try(s.AppendAudit(ctx, domain.AuditEntry{Action: "denied", Route: "get"}))
				_, err = s.ListRepairs(ctx, RepairFilter{Limit: 5})
				try(err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c, err := owner.Counts(ctx, "get", t0)
	if err != nil {
		t.Fatal(err)
	}
	if c.Requests != 32 {
		t.Errorf("got %d requests counted, want 32", c.Requests)
	}
}

// TestTheJournalsHousekeepingReadsItsIndexes: what the facade reads of
// the journal every few seconds (the queue depth) or every hour (the
// purge and the sweep of settled writes) it finds through a partial index
// of just those writes, so its cost does not grow with the days of
// settled writes the journal keeps. SQLite uses a partial index only for a
// condition spelled as the index's is.
func TestTheJournalsHousekeepingReadsItsIndexes(t *testing.T) {
	t.Parallel()
	s := openStore(t, backends()[0].fresh(t), newClock())
	plan := func(t *testing.T, query string) []string {
		t.Helper()
		rows, err := s.db.Query(`EXPLAIN QUERY PLAN ` + query)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var reads []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(detail, "strangler_repairs") {
				reads = append(reads, detail)
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return reads
	}
	t.Run("the queue depth reads each open state's index", func(t *testing.T) {
		reads := plan(t, countOpen)
		for _, r := range reads {
			if !strings.Contains(r, "INDEX") {
				t.Errorf("the depth reads the whole journal: %s", r)
			}
		}
		if len(reads) != len(openStates) {
			t.Errorf("the depth reads the journal %d times (%q), want once per open state (%d)", len(reads), reads, len(openStates))
		}
	})
	for _, tc := range []struct{ name, where, index string }{
		{"the purge reads the settled writes' index", statesIn(finalStates) + ` AND updated_at < '2026'`, "strangler_repairs_settled"},
		{"the sweep reads the unerased writes' index", statesIn(finalStates) + ` AND target <> ''`, "strangler_repairs_unerased"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reads := plan(t, `SELECT id FROM strangler_repairs WHERE `+tc.where)
			if len(reads) != 1 || !strings.Contains(reads[0], tc.index) {
				t.Errorf("it reads %q, want %s", reads, tc.index)
			}
		})
	}
}

// TestTheJournalsWritesBuildNoTemporaryTables: journaling a write,
// numbering and recording its primary's answer and its delivery evaluate
// the journal's CHECK on state and the conditions of its partial
// indexes, and none of them makes SQLite build a temporary b-tree
// (OpenEphemeral), as a constant IN list of three or more values does
// each time a statement runs (that was a third of the instructions of a
// dual write's journal entries), and as RETURNING does. A batch's
// deliveries, found by their list of ids, take one for that list,
// whichever the batch's size.
func TestTheJournalsWritesBuildNoTemporaryTables(t *testing.T) {
	t.Parallel()
	s := openStore(t, backends()[0].fresh(t), newClock())
	for _, tc := range []struct {
		name, statement string
		want            int
	}{
		{"an intent", s.intentStatement(1), 0},
		{"a batch's intents", s.intentStatement(4), 0},
		{"a queued answer", `UPDATE strangler_repairs SET ` + moveQueue.set() + `, seq = 1, status = 201, location = '', primary_id = '',
			next_attempt_at = '', lease_owner = NULL, lease_until = NULL, updated_at = '', resource = 'r', resource_view = '/r'
			WHERE id = $1 AND ` + moveQueue.where(), 0},
		{"a refused answer", `UPDATE strangler_repairs SET ` + moveSkip.set() + `, status = 500, ` + s.erase() + `, updated_at = ''
			WHERE id = $1 AND ` + moveSkip.where(), 0},
		{"a queued answer, numbered by the statement", s.outcomes.queue, 0},
		{"a queued answer that leases its resource's head", s.outcomes.queueHead, 0},
		{"a sequence number", s.dialect.nextSeq, 0},
		{"a delivery", s.completeStatement(1), 0},
		{"a batch's deliveries", s.completeStatement(16), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			temporary := 0
			for _, op := range explain(t, s, tc.statement) {
				if op.opcode == "OpenEphemeral" {
					temporary++
				}
			}
			if temporary != tc.want {
				t.Errorf("it builds %d temporary b-trees each time it runs, want %d", temporary, tc.want)
			}
		})
	}
}

// TestABatchOfIntentsBindsItsValuesByPosition: the statement that
// journals a batch of intents names none of its parameters, as the
// driver finds a named one by walking the statement's list of names:
// binding the 1,664 values of 128 intents so took time quadratic in the
// batch's size. Taken by position, they still journal every intent.
func TestABatchOfIntentsBindsItsValuesByPosition(t *testing.T) {
	t.Parallel()
	s := openStore(t, backends()[0].fresh(t), newClock())
	statement := s.intentStatement(maxBatch)
	anonymous, named := strings.Count(statement, "?"), len(regexp.MustCompile(`\$[0-9]+`).FindAllString(statement, -1))
	if want := maxBatch * intentWidth; anonymous != want || named != 0 {
		t.Errorf("the statement takes %d values by position and %d by name; want %d by position, none by name", anonymous, named, want)
	}
	// And the store journals a batch so: every intent of it is there.
	tx, err := s.db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var rows []any
	for i := range maxBatch {
		in := domain.Intent{ID: fmt.Sprintf("w-%03d", i), Route: "r", Resource: "/records", Method: "POST", Target: "/records",
			Primary: domain.Legacy}
		rows = append(rows, s.intentRow(in, time.Minute, false)...)
	}
	if err := s.intents.exec(context.Background(), tx, rows); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := tx.QueryRow(`SELECT count(*) FROM strangler_repairs WHERE state = 'sent' AND route = 'r'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != maxBatch {
		t.Errorf("%d intents journaled, want %d", n, maxBatch)
	}
}

// explained is one instruction of a statement SQLite compiled.
type explained struct {
	opcode string
}

// explain returns the instructions SQLite compiles statement into.
func explain(t *testing.T, s *Store, statement string) []explained {
	t.Helper()
	// Explained, not run: every parameter may be NULL. A statement may
	// leave one of its numbers unused ($2 of queue on SQLite).
	n := strings.Count(statement, "?")
	for _, m := range regexp.MustCompile(`\$([0-9]+)`).FindAllStringSubmatch(statement, -1) {
		k, _ := strconv.Atoi(m[1])
		n = max(n, k)
	}
	args := make([]any, n)
	rows, err := s.db.Query(`EXPLAIN `+statement, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []explained
	for rows.Next() {
		values := make([]any, len(cols))
		for i := range values {
			values[i] = new(any)
		}
		if err := rows.Scan(values...); err != nil {
			t.Fatal(err)
		}
		// addr, opcode, p1, p2, p3, p4, p5, comment
		out = append(out, explained{opcode: fmt.Sprint(*values[1].(*any))})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
