package store

import (
	"context"
	"fmt"
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
				try(s.BeginWrite(ctx, intent(id, fmt.Sprintf("update-patient/%d", i)), clk.Now().Add(time.Minute)))
				try(s.RecordOutcome(ctx, id, domain.Outcome{Status: 200}))
				rs, err := s.ClaimRepairs(ctx, id, 2, time.Minute, clk.Now())
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

// TestTheQueueDepthReadsNoSettledWrite: the queue depth, read every few
// seconds, counts each open state from an index of that state alone, so
// its cost follows the open writes, not the settled ones the journal
// keeps for days.
func TestTheQueueDepthReadsNoSettledWrite(t *testing.T) {
	t.Parallel()
	s := openStore(t, backends()[0].fresh(t), newClock())
	rows, err := s.db.Query(`EXPLAIN QUERY PLAN ` + countOpen)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	counted := 0
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(detail, "strangler_repairs") {
			continue
		}
		counted++
		if !strings.Contains(detail, "USING INDEX") && !strings.Contains(detail, "USING COVERING INDEX") {
			t.Errorf("the depth query reads the whole journal: %s", detail)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if counted != len(openStates) {
		t.Errorf("the plan reads the journal %d times, want once per open state (%d)", counted, len(openStates))
	}
}
