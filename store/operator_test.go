package store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testdb"
)

func TestOperatorActions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)
		journal(t, s, "p1", "update-patient/1")
		journal(t, s, "p2", "update-patient/1")
		clk.Advance(time.Second)
		journal(t, s, "d1", "update-patient/2")
		if got := claimIDs(t, s, "w"); !reflect.DeepEqual(got, []string{"p1", "d1"}) {
			t.Fatalf("claimed %v, want [p1 d1]", got)
		}
		if err := s.FailRepair(ctx, "d1", "w", "400 from modern", 0, true); err != nil {
			t.Fatal(err)
		}
		if err := s.BeginWrite(ctx, intent("u1", "update-patient/1"), 0); err != nil {
			t.Fatal(err)
		}
		if err := s.MarkUnknown(ctx, "u1"); err != nil {
			t.Fatal(err)
		}
		if err := s.BeginWrite(ctx, intent("s1", "update-patient/3"), time.Minute); err != nil {
			t.Fatal(err)
		}

		t.Run("the queue depth counts every open state", func(t *testing.T) {
			got, err := s.RepairDepth(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int{"pending": 2, "dead": 1, "unknown": 1, "sent": 1}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got %v, want %v", got, want)
			}
		})

		t.Run("listing filters by state and route, newest first, without bodies", func(t *testing.T) {
			all, err := s.ListRepairs(ctx, RepairFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != 5 || all[0].ID != "u1" && all[0].ID != "s1" {
				t.Errorf("got %d repairs starting with %v, want 5, newest first", len(all), all)
			}
			dead, err := s.ListRepairs(ctx, RepairFilter{State: domain.StateDead, Route: "update-patient"})
			if err != nil {
				t.Fatal(err)
			}
			if len(dead) != 1 || dead[0].ID != "d1" || dead[0].LastError != "400 from modern" || dead[0].Attempts != 1 {
				t.Errorf("got %+v, want d1 with its error", dead)
			}
			none, err := s.ListRepairs(ctx, RepairFilter{Route: "other"})
			if err != nil || len(none) != 0 {
				t.Errorf("route other: got %v, %v; want nothing", none, err)
			}
			limited, err := s.ListRepairs(ctx, RepairFilter{Limit: 2})
			if err != nil || len(limited) != 2 {
				t.Errorf("limit 2: got %d, %v; want 2", len(limited), err)
			}
			if _, err := s.ListRepairs(ctx, RepairFilter{State: "lost"}); err == nil {
				t.Error("an unknown state filter gave no error")
			}
		})

		t.Run("an unknown id is not found", func(t *testing.T) {
			if _, err := s.GetRepair(ctx, "nope", false); !errors.Is(err, ErrNotFound) {
				t.Errorf("GetRepair: got %v, want ErrNotFound", err)
			}
			if err := s.RetryRepair(ctx, "nope", domain.AuditEntry{Action: "repair_retry"}); !errors.Is(err, ErrNotFound) {
				t.Errorf("RetryRepair: got %v, want ErrNotFound", err)
			}
			if err := s.DiscardRepair(ctx, "nope", domain.AuditEntry{Action: "repair_discard"}); !errors.Is(err, ErrNotFound) {
				t.Errorf("DiscardRepair: got %v, want ErrNotFound", err)
			}
		})

		t.Run("actions that do not fit the state are refused", func(t *testing.T) {
			if err := s.RetryRepair(ctx, "p2", domain.AuditEntry{Action: "repair_retry"}); !errors.Is(err, ErrInvalidState) {
				t.Errorf("retrying a pending write: got %v, want ErrInvalidState", err)
			}
			if err := s.DiscardRepair(ctx, "s1", domain.AuditEntry{Action: "repair_discard"}); !errors.Is(err, ErrInvalidState) {
				t.Errorf("discarding a sent write: got %v, want ErrInvalidState", err)
			}
		})

		t.Run("retrying an unknown write queues it after the resource's other writes", func(t *testing.T) {
			if err := s.RetryRepair(ctx, "u1", domain.AuditEntry{Action: "repair_retry"}); err != nil {
				t.Fatal(err)
			}
			p2, err := s.GetRepair(ctx, "p2", false)
			if err != nil {
				t.Fatal(err)
			}
			u1, err := s.GetRepair(ctx, "u1", false)
			if err != nil {
				t.Fatal(err)
			}
			if u1.State != domain.StatePending || u1.Seq <= p2.Seq {
				t.Errorf("got %s seq %d, want pending after p2's seq %d", u1.State, u1.Seq, p2.Seq)
			}
			if err := s.CompleteRepair(ctx, "p1", "w"); err != nil {
				t.Fatal(err)
			}
			if got := claimIDs(t, s, "w"); !reflect.DeepEqual(got, []string{"p2"}) {
				t.Errorf("claimed %v, want [p2]", got)
			}
		})

		t.Run("a write being delivered is not discarded", func(t *testing.T) {
			// p2 is claimed by w: the secondary may apply it, whatever a
			// discard would record.
			err := s.DiscardRepair(ctx, "p2", domain.AuditEntry{Action: "repair_discard"})
			if !errors.Is(err, ErrInvalidState) || !strings.Contains(err.Error(), "it is pending and being delivered") {
				t.Errorf("got %v, want ErrInvalidState saying it is being delivered", err)
			}
			if got := state(t, s, "p2"); got != domain.StatePending {
				t.Errorf("p2 is %s, want pending", got)
			}
		})

		t.Run("a worker whose repair was discarded once its lease passed finds its lease lost", func(t *testing.T) {
			clk.Advance(2 * time.Minute)
			if err := s.DiscardRepair(ctx, "p2", domain.AuditEntry{Action: "repair_discard"}); err != nil {
				t.Fatal(err)
			}
			if err := s.CompleteRepair(ctx, "p2", "w"); !errors.Is(err, ErrLeaseLost) {
				t.Errorf("got %v, want ErrLeaseLost", err)
			}
		})

		t.Run("purging removes only finished writes older than the cutoff", func(t *testing.T) {
			clk.Advance(time.Hour)
			journal(t, s, "late", "update-patient/9")
			if got := claimIDs(t, s, "w"); !reflect.DeepEqual(got, []string{"u1", "late"}) {
				t.Fatalf("claimed %v, want [u1 late]", got)
			}
			if err := s.CompleteRepair(ctx, "late", "w"); err != nil {
				t.Fatal(err)
			}
			n, err := s.PurgeRepairs(ctx, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if n != 2 { // p1 done, p2 discarded
				t.Errorf("purged %d, want 2", n)
			}
			for id, want := range map[string]domain.State{"late": domain.StateDone, "d1": domain.StateDead, "u1": domain.StatePending, "s1": domain.StateSent} {
				if got := state(t, s, id); got != want {
					t.Errorf("%s: got %s, want %s", id, got, want)
				}
			}
			if _, err := s.GetRepair(ctx, "p1", false); !errors.Is(err, ErrNotFound) {
				t.Errorf("p1 after purge: got %v, want ErrNotFound", err)
			}
		})
	})
}

// TestListingAStateReadsItsIndexOnPostgres: an operator listing the dead
// (or unknown) writes of a journal of many settled ones reads the index
// of that state, also from a plan PostgreSQL made for any arguments (a
// generic plan, which it switches to for a statement run often).
func TestListingAStateReadsItsIndexOnPostgres(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newStore(t, backends()[1], nil)
	if _, err := s.db.ExecContext(ctx, `
		INSERT INTO strangler_repairs (id, route, resource, method, target, header, body, primary_side, state, created_at, updated_at)
		SELECT 'w' || i, 'put-item', 'r' || i, 'PUT', '', '', '', 'legacy', 'done', now(), now()
		FROM generate_series(1, 5000) AS i`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `ANALYZE strangler_repairs`); err != nil {
		t.Fatal(err)
	}
	q, args, err := s.listQuery(ctx, RepairFilter{State: domain.StateDead, Route: "put-item"})
	if err != nil {
		t.Fatal(err)
	}
	literals := make([]string, len(args))
	for i, a := range args {
		literals[i] = fmt.Sprintf("%v", a)
		if _, ok := a.(string); ok {
			literals[i] = "'" + literals[i] + "'"
		}
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, stmt := range []string{`SET plan_cache_mode = force_generic_plan`, `PREPARE listing AS ` + q} {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := conn.QueryContext(ctx, `EXPLAIN EXECUTE listing(`+strings.Join(literals, ", ")+`)`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(plan, "\n"), "strangler_repairs_dead") {
		t.Errorf("listing the dead writes does not read their index:\n%s", strings.Join(plan, "\n"))
	}
}

// TestRetryOfAnUnknownWriteAfterLaterWrites: an unknown write retried
// after a later write to its resource was applied would reach the
// secondary after it and leave the older body there; it is refused, and
// stays unknown. Later writes the primary refused do not count, nor do
// any for a create, whose resource is its collection; a POST standing
// for a PUT (X-HTTP-Method-Override) is no create, and is refused as a
// PUT (taken for a create by the method it was sent with, it was
// retried, and would have overwritten the later write on the secondary).
func TestRetryOfAnUnknownWriteAfterLaterWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)
		lose := func(id, resource, method string) {
			in := intent(id, resource)
			in.Method, in.StandsFor = method, method
			if id == "lost-c" {
				in.Method = http.MethodPost
			}
			if err := s.BeginWrite(ctx, in, 0); err != nil {
				t.Fatal(err)
			}
			if err := s.MarkUnknown(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
		lose("lost-a", "update-patient/lost-a", http.MethodPut)
		lose("lost-b", "update-patient/lost-b", http.MethodPut)
		lose("lost-c", "update-patient/lost-c", http.MethodPut)
		lose("create-1", "patients", http.MethodPost)
		clk.Advance(time.Second)
		lose("create-2", "patients", http.MethodPost)
		journal(t, s, "later-a", "update-patient/lost-a")
		journal(t, s, "later-c", "update-patient/lost-c")
		if got := claimIDs(t, s, "w"); !reflect.DeepEqual(got, []string{"later-a", "later-c"}) {
			t.Fatalf("claimed %v, want [later-a later-c]", got)
		}
		for _, id := range []string{"later-a", "later-c"} {
			if err := s.CompleteRepair(ctx, id, "w"); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.BeginWrite(ctx, intent("refused-b", "update-patient/lost-b"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordOutcome(ctx, "refused-b", domain.Outcome{Status: 409}); err != nil {
			t.Fatal(err)
		}

		err := s.RetryRepair(ctx, "lost-a", domain.AuditEntry{Action: "repair_retry"})
		if !errors.Is(err, ErrInvalidState) || !strings.Contains(err.Error(), "it is unknown, and 1 later writes to its resource reached the secondary") {
			t.Errorf("retrying lost-a: got %v, want ErrInvalidState naming the later write", err)
		}
		if got := state(t, s, "lost-a"); got != domain.StateUnknown {
			t.Errorf("lost-a is %s, want unknown", got)
		}
		err = s.RetryRepair(ctx, "lost-c", domain.AuditEntry{Action: "repair_retry"})
		if !errors.Is(err, ErrInvalidState) || !strings.Contains(err.Error(), "1 later writes to its resource") {
			t.Errorf("retrying lost-c, a POST standing for a PUT: got %v, want ErrInvalidState naming the later write", err)
		}
		if err := s.RetryRepair(ctx, "lost-b", domain.AuditEntry{Action: "repair_retry"}); err != nil {
			t.Errorf("retrying lost-b, whose later write the primary refused: %v", err)
		}
		for _, id := range []string{"create-2", "create-1"} {
			if err := s.RetryRepair(ctx, id, domain.AuditEntry{Action: "repair_retry"}); err != nil {
				t.Errorf("retrying %s, a create: %v", id, err)
			}
		}
		if got := claimIDs(t, s, "w"); !reflect.DeepEqual(got, []string{"lost-b", "create-2"}) {
			t.Errorf("claimed %v, want [lost-b create-2]", got)
		}
	})
}

// TestDiscardOnAnotherReplicaWhileDelivering: on PostgreSQL, replica b
// discarding a write replica a is delivering is refused, and two
// replicas retrying one dead write at once retry it once.
func TestDiscardOnAnotherReplicaWhileDelivering(t *testing.T) {
	ctx := context.Background()
	dsn := testdb.Postgres(t)
	a, b := openStore(t, dsn, nil), openStore(t, dsn, nil)
	journal(t, a, "w1", "update-patient/1")
	if _, ok, err := a.ClaimRepair(ctx, "w1", "a-worker", time.Minute); err != nil || !ok {
		t.Fatalf("ClaimRepair: %v, %v", ok, err)
	}
	if err := b.DiscardRepair(ctx, "w1", domain.AuditEntry{Action: "repair_discard"}); !errors.Is(err, ErrInvalidState) {
		t.Errorf("discard on b: got %v, want ErrInvalidState", err)
	}
	if err := a.CompleteRepair(ctx, "w1", "a-worker"); err != nil {
		t.Errorf("a's delivery: %v", err)
	}
	if got := state(t, b, "w1"); got != domain.StateDone {
		t.Errorf("w1 is %s, want done", got)
	}

	journal(t, a, "w2", "update-patient/2")
	if _, ok, err := a.ClaimRepair(ctx, "w2", "a-worker", time.Minute); err != nil || !ok {
		t.Fatalf("ClaimRepair: %v, %v", ok, err)
	}
	if err := a.FailRepair(ctx, "w2", "a-worker", "400", 0, true); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for _, s := range []*Store{a, b} {
		go func() { errs <- s.RetryRepair(ctx, "w2", domain.AuditEntry{Action: "repair_retry"}) }()
	}
	var refused int
	for range 2 {
		if err := <-errs; errors.Is(err, ErrInvalidState) {
			refused++
		} else if err != nil {
			t.Error(err)
		}
	}
	if refused != 1 {
		t.Errorf("%d of two retries at once refused, want 1", refused)
	}
}

// TestListingPagesByID: with more writes than a page holds, before_id
// pages through all of them once, writes created in the same instant
// included; an id that names no write is ErrNotFound, not an empty page.
func TestListingPagesByID(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)
		for i := range 7 {
			if i == 3 {
				clk.Advance(time.Second)
			}
			journal(t, s, fmt.Sprintf("w%d", i), fmt.Sprintf("update-patient/%d", i))
		}
		var got []string
		f := RepairFilter{Limit: 3}
		for range 4 {
			page, err := s.ListRepairs(ctx, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				got = append(got, r.ID)
			}
			if len(page) < f.Limit {
				break
			}
			f.BeforeID = page[len(page)-1].ID
		}
		if want := []string{"w6", "w5", "w4", "w3", "w2", "w1", "w0"}; !reflect.DeepEqual(got, want) {
			t.Errorf("pages listed %v, want %v", got, want)
		}
		if _, err := s.ListRepairs(ctx, RepairFilter{BeforeID: "no-such-write"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("before a made-up id: got %v, want ErrNotFound", err)
		}
	})
}

// TestAnOperatorsActionAndItsAuditEntryCommitTogether: a retry or a
// discard is audited in the transaction that moves the write. A refused
// action leaves no entry claiming it was taken (the admin API then audits
// the refusal alone), and an entry that cannot be appended takes the move
// back with it: the log never says a write moved that did not, nor the
// other way round. Before, the entry was appended first and stayed.
func TestAnOperatorsActionAndItsAuditEntryCommitTogether(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b, newClock())
		journal(t, s, "p1", "update-patient/1")
		journal(t, s, "d1", "update-patient/2")
		if got := claimIDs(t, s, "w"); len(got) != 2 {
			t.Fatalf("claimed %v, want p1 and d1", got)
		}
		if err := s.FailRepair(ctx, "d1", "w", "400 from modern", 0, true); err != nil {
			t.Fatal(err)
		}
		entries := func() []string {
			t.Helper()
			log, err := s.AuditLog(ctx, AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, e := range log {
				out = append(out, e.Action+" "+e.Detail)
			}
			return out
		}
		if err := s.RetryRepair(ctx, "p1", domain.AuditEntry{Action: "repair_retry", Detail: "p1"}); !errors.Is(err, ErrInvalidState) {
			t.Fatalf("retrying a pending write: %v, want ErrInvalidState", err)
		}
		if err := s.DiscardRepair(ctx, "p1", domain.AuditEntry{Action: "repair_discard", Detail: "p1"}); !errors.Is(err, ErrInvalidState) {
			t.Fatalf("discarding a write being delivered: %v, want ErrInvalidState", err)
		}
		if got := entries(); len(got) != 0 {
			t.Errorf("refused actions left %v in the audit log, want nothing", got)
		}
		// An entry without an action cannot be appended.
		if err := s.DiscardRepair(ctx, "d1", domain.AuditEntry{Detail: "d1"}); err == nil {
			t.Fatal("a discard whose entry could not be appended succeeded")
		}
		if got := state(t, s, "d1"); got != domain.StateDead {
			t.Errorf("d1 is %s after a discard whose audit entry failed, want dead", got)
		}
		if err := s.RetryRepair(ctx, "d1", domain.AuditEntry{Detail: "d1"}); err == nil {
			t.Fatal("a retry whose entry could not be appended succeeded")
		}
		if got := state(t, s, "d1"); got != domain.StateDead {
			t.Errorf("d1 is %s after a retry whose audit entry failed, want dead", got)
		}
		if err := s.DiscardRepair(ctx, "d1", domain.AuditEntry{Action: "repair_discard", Detail: "d1"}); err != nil {
			t.Fatal(err)
		}
		if got := state(t, s, "d1"); got != domain.StateDiscarded {
			t.Errorf("d1 is %s, want discarded", got)
		}
		if got, want := entries(), []string{"repair_discard d1"}; !reflect.DeepEqual(got, want) {
			t.Errorf("the audit log holds %v, want %v", got, want)
		}
	})
}
