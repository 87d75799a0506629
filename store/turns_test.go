package store

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"strangler/domain"
)

// TestOneSentWriteAResourceHoldsItsTurn: one sent write per resource at
// a time has its turn with the primary, among the replicas sharing a
// PostgreSQL store and in the one process using an SQLite store (which
// then knows, should the process die, which write the primary had);
// recording its outcome, or marking it unknown, ends it. A write marked
// unknown that a client's key resumes takes its turn again, behind the
// write that has it now.
func TestOneSentWriteAResourceHoldsItsTurn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.fresh(t)
		s := openStore(t, dsn, nil)
		// Two replicas: two stores on one database, each its own pool.
		other := s
		if b.name == "postgres" {
			other = openStore(t, dsn, nil)
		}
		takes := func(st *Store, id string) bool {
			t.Helper()
			resource := "/patients/42"
			if id == "elsewhere" {
				resource = "/patients/43"
			}
			taken, err := st.TakeTurn(ctx, id, resource, time.Minute)
			if err != nil {
				t.Fatalf("TakeTurn(%s): %v", id, err)
			}
			return taken
		}
		k := keyed("key-1", `{"name":"w1"}`)
		if kw := begin(t, s, "w1", k); kw.Use != domain.KeyJournaled {
			t.Fatalf("w1: %v, want journaled", kw.Use)
		}
		for _, id := range []string{"w2", "w3"} {
			if err := other.BeginWrite(ctx, intent(id, "/patients/42"), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		if err := other.BeginWrite(ctx, intent("elsewhere", "/patients/43"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if !takes(s, "w1") {
			t.Fatal("w1, the first to ask: no turn")
		}
		if takes(other, "w2") {
			t.Error("w2 while w1 has the turn: got it")
		}
		if !takes(other, "elsewhere") {
			t.Error("a write to another resource: no turn")
		}
		if err := s.MarkUnknown(ctx, "w1"); err != nil {
			t.Fatal(err)
		}
		if !takes(other, "w2") {
			t.Fatal("w2 once w1 is unknown: no turn")
		}
		// The client retries w1 with its key: resumed, sent again, it
		// waits behind w2.
		if kw := begin(t, s, "w1-retry", k); kw.Use != domain.KeyResumed || kw.ID != "w1" {
			t.Fatalf("w1's retry: %+v, want w1 resumed", kw)
		}
		if takes(s, "w1") {
			t.Error("resumed w1 while w2 has the turn: got it")
		}
		if err := other.RecordOutcome(ctx, "w2", domain.Outcome{Status: http.StatusOK}); err != nil {
			t.Fatal(err)
		}
		if !takes(s, "w1") {
			t.Fatal("resumed w1 once w2's outcome is recorded: no turn")
		}
		if takes(other, "w3") {
			t.Error("w3 while w1 has the turn again: got it")
		}
		if err := s.RecordOutcome(ctx, "w1", domain.Outcome{Status: http.StatusConflict}); err != nil {
			t.Fatal(err)
		}
		if !takes(other, "w3") {
			t.Error("w3 once w1 is skipped: no turn")
		}
		if _, err := s.TakeTurn(ctx, "w2", "/patients/42", time.Minute); !errors.Is(err, ErrInvalidState) {
			t.Errorf("TakeTurn of w2, no longer sent: %v, want ErrInvalidState", err)
		}
	})
}

// TestAWriteLeftSentKeepsItsTurnUntilItLeavesSent: a write whose
// exchange with the primary ended unanswered, left sent for recovery,
// keeps its resource's turn: on SQLite as on PostgreSQL, no later write
// to the resource has its turn until the kept one's outcome is recorded.
// A write to another resource has its turn meanwhile.
func TestAWriteLeftSentKeepsItsTurnUntilItLeavesSent(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := openStore(t, b.fresh(t), nil)
		for _, w := range []struct{ id, resource string }{
			{"w1", "/patients/42"}, {"w2", "/patients/42"}, {"w3", "/patients/42"}, {"elsewhere", "/patients/43"},
		} {
			if err := s.BeginWrite(ctx, intent(w.id, w.resource), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		takes := func(id, resource string) bool {
			t.Helper()
			taken, err := s.TakeTurn(ctx, id, resource, time.Minute)
			if err != nil {
				t.Fatalf("TakeTurn(%s): %v", id, err)
			}
			return taken
		}
		if !takes("w1", "/patients/42") {
			t.Fatal("w1, the first to ask: no turn")
		}
		if err := s.KeepTurn(ctx, "w1", "/patients/42", time.Minute); err != nil {
			t.Fatalf("KeepTurn(w1): %v", err)
		}
		if takes("w2", "/patients/42") {
			t.Error("w2 while w1, left sent, keeps the turn: got it")
		}
		if !takes("elsewhere", "/patients/43") {
			t.Error("a write to another resource: no turn")
		}
		if err := s.RecordOutcome(ctx, "w1", domain.Outcome{Status: http.StatusOK}); err != nil {
			t.Fatal(err)
		}
		if !takes("w2", "/patients/42") {
			t.Fatal("w2 once w1's outcome is recorded: no turn")
		}
		if err := s.RecordOutcome(ctx, "w2", domain.Outcome{Status: http.StatusOK}); err != nil {
			t.Fatal(err)
		}
		if !takes("w3", "/patients/42") {
			t.Error("w3 once w2's outcome is recorded: no turn")
		}
	})
}

// TestWritesLeftSentHoldTheirTurnAcrossARestart: the writes to a
// resource but creates that a process left sent (kept for recovery, in
// flight when it died, or waiting for their turn) hold the resource's
// turn in the process that opens the store next, until each has left
// sent: on SQLite, whose turns are in the process's memory, as on
// PostgreSQL. A create left sent holds nothing (its resource, its
// collection, is not what it made), nor does a write to another
// resource; a POST standing for a DELETE (_method=DELETE) is no create
// and holds its resource as a DELETE does (taken for a create by the
// method it was sent with, it held nothing on SQLite).
func TestWritesLeftSentHoldTheirTurnAcrossARestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.fresh(t)
		s := openStore(t, dsn, nil)
		create := intent("create", "/patients")
		create.Method, create.StandsFor = http.MethodPost, http.MethodPost
		deleting := intent("deleting", "/patients/42")
		deleting.Method, deleting.StandsFor = http.MethodPost, http.MethodDelete
		for _, in := range []domain.Intent{
			intent("kept", "/patients/42"), intent("waiting", "/patients/42"), deleting, intent("flight", "/patients/43"), create,
		} {
			if err := s.BeginWrite(ctx, in, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		for _, w := range []struct{ id, resource string }{{"kept", "/patients/42"}, {"flight", "/patients/43"}} {
			if taken, err := s.TakeTurn(ctx, w.id, w.resource, time.Minute); err != nil || !taken {
				t.Fatalf("TakeTurn(%s) = %v, %v; want its turn", w.id, taken, err)
			}
		}
		if err := s.KeepTurn(ctx, "kept", "/patients/42", time.Minute); err != nil {
			t.Fatal(err)
		}
		s.Close()

		s = openStore(t, dsn, nil)
		for _, in := range []domain.Intent{intent("after42", "/patients/42"), intent("after43", "/patients/43"), intent("after44", "/patients/44"), intent("afterPost", "/patients")} {
			if err := s.BeginWrite(ctx, in, time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		takes := func(id, resource string) bool {
			t.Helper()
			taken, err := s.TakeTurn(ctx, id, resource, time.Minute)
			if err != nil {
				t.Fatalf("TakeTurn(%s): %v", id, err)
			}
			return taken
		}
		if takes("after42", "/patients/42") {
			t.Error("a write to /patients/42 while the one kept before the restart is sent: got the turn")
		}
		if takes("after43", "/patients/43") {
			t.Error("a write to /patients/43 while the one in flight before the restart is sent: got the turn")
		}
		if !takes("after44", "/patients/44") {
			t.Error("a write to another resource: no turn")
		}
		if !takes("afterPost", "/patients") {
			t.Error("a write to the collection a create left sent was posted to: no turn")
		}
		for _, id := range []string{"kept", "flight"} {
			if err := s.RecordOutcome(ctx, id, domain.Outcome{Status: http.StatusOK}); err != nil {
				t.Fatal(err)
			}
		}
		if !takes("after43", "/patients/43") {
			t.Error("the write to /patients/43 once the one before the restart is recorded: no turn")
		}
		if takes("after42", "/patients/42") && b.name == "sqlite" {
			// On PostgreSQL the waiting write never held the turn
			// (it never went to the primary); on SQLite every write
			// left sent holds it until settled (noteLeftSent).
			t.Error("a write to /patients/42 while one more written before the restart is sent: got the turn")
		}
		if err := s.MarkUnknown(ctx, "waiting"); err != nil {
			t.Fatal(err)
		}
		if takes("after42", "/patients/42") && b.name == "sqlite" {
			t.Error("a write to /patients/42 while a POST standing for a DELETE written before the restart is sent: got the turn")
		}
		if err := s.MarkUnknown(ctx, "deleting"); err != nil {
			t.Fatal(err)
		}
		if !takes("after42", "/patients/42") {
			t.Error("the write to /patients/42 once every write before the restart left sent: no turn")
		}
	})
}

// TestAWriteJournaledWhileItsResourceIsFreeHoldsItsTurn: a write
// journaled with BeginWriteTurn holds its resource's turn from that
// statement when no sent write holds it, as if TakeTurn had given it;
// it is journaled without the turn, and says so, while another holds
// it (on SQLite: a write of the process whose outcome the store did not
// take yet), on PostgreSQL also when another replica's write takes it
// while the journal entry is being written.
func TestAWriteJournaledWhileItsResourceIsFreeHoldsItsTurn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := openStore(t, b.fresh(t), nil)
		begins := func(id, resource string) bool {
			t.Helper()
			turn, err := s.BeginWriteTurn(ctx, intent(id, resource), time.Minute)
			if err != nil {
				t.Fatalf("BeginWriteTurn(%s): %v", id, err)
			}
			return turn
		}
		takes := func(id string) bool {
			t.Helper()
			taken, err := s.TakeTurn(ctx, id, "/patients/42", time.Minute)
			if err != nil {
				t.Fatalf("TakeTurn(%s): %v", id, err)
			}
			return taken
		}
		if !begins("w1", "/patients/42") {
			t.Fatal("w1, the resource free: no turn")
		}
		if begins("w2", "/patients/42") {
			t.Error("w2 while w1 holds the turn: got it")
		}
		if takes("w2") {
			t.Error("TakeTurn(w2) while w1 holds the turn from its journal entry: got it")
		}
		if !begins("elsewhere", "/patients/43") {
			t.Error("a write to another resource: no turn")
		}
		if _, err := s.BeginWriteTurn(ctx, intent("w1", "/patients/44"), time.Minute); !errors.Is(err, ErrConflict) {
			t.Errorf("BeginWriteTurn of an id journaled already: %v, want ErrConflict", err)
		}
		if err := s.RecordOutcome(ctx, "w1", domain.Outcome{Status: http.StatusOK}); err != nil {
			t.Fatal(err)
		}
		if !takes("w2") {
			t.Fatal("w2 once w1's outcome is recorded: no turn")
		}
		if err := s.RecordOutcome(ctx, "w2", domain.Outcome{Status: http.StatusOK}); err != nil {
			t.Fatal(err)
		}
		if b.name != "postgres" {
			return // one process: no other replica takes the turn meanwhile
		}
		// Another replica's write takes the turn while w3's entry is
		// written: w3's statement waits for that commit, then is
		// refused on the turn's index; w3 is journaled without it.
		if err := s.BeginWrite(ctx, intent("other", "/patients/42"), time.Minute); err != nil {
			t.Fatal(err)
		}
		tx, err := s.db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(ctx, takeTurn, "other"); err != nil {
			t.Fatal(err)
		}
		var holder int
		if err := tx.QueryRowContext(ctx, `SELECT pg_backend_pid()`).Scan(&holder); err != nil {
			t.Fatal(err)
		}
		type result struct {
			turn bool
			err  error
		}
		done := make(chan result, 1)
		go func() {
			turn, err := s.BeginWriteTurn(ctx, intent("w3", "/patients/42"), time.Minute)
			done <- result{turn, err}
		}()
		// w3's statement is under way once the other's transaction
		// blocks it.
		for waiting := false; !waiting; {
			if err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
				WHERE $1 = ANY (pg_blocking_pids(pid)))`, holder).Scan(&waiting); err != nil {
				t.Fatal(err)
			}
			select {
			case r := <-done:
				t.Fatalf("w3 journaled before the other's turn was committed: %+v", r)
			case <-time.After(10 * time.Millisecond):
			}
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		if r := <-done; r.err != nil || r.turn {
			t.Fatalf("w3 while the other took the turn: turn %v, %v; want journaled without it", r.turn, r.err)
		}
		if takes("w3") {
			t.Error("TakeTurn(w3) while the other holds the turn: got it")
		}
		if err := s.RecordOutcome(ctx, "other", domain.Outcome{Status: http.StatusOK}); err != nil {
			t.Fatal(err)
		}
		if !takes("w3") {
			t.Error("w3 once the other's outcome is recorded: no turn")
		}
	})
}

// TestRecoveryResendsAWriteInItsTurn: a write recovery is about to
// resend takes its resource's turn, which it may hold already (it was
// with the primary), and waits while another write holds it (it waited
// behind that one), on SQLite as on PostgreSQL; a write no longer sent
// is ErrInvalidState.
func TestRecoveryResendsAWriteInItsTurn(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := openStore(t, b.fresh(t), nil)
		for _, id := range []string{"w1", "w2"} {
			if err := s.BeginWrite(ctx, intent(id, "/patients/42"), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		if taken, err := s.TakeTurn(ctx, "w1", "/patients/42", time.Minute); err != nil || !taken {
			t.Fatalf("TakeTurn(w1) = %v, %v", taken, err)
		}
		resends := func(id string) bool {
			t.Helper()
			taken, err := s.TakeResendTurn(ctx, id, time.Minute)
			if err != nil {
				t.Fatalf("TakeResendTurn(%s): %v", id, err)
			}
			return taken
		}
		if !resends("w1") {
			t.Error("w1, which holds the turn: not its turn")
		}
		if resends("w2") {
			t.Error("w2 while w1 holds the turn: got it")
		}
		if err := s.RecordOutcome(ctx, "w1", domain.Outcome{Status: http.StatusOK}); err != nil {
			t.Fatal(err)
		}
		if !resends("w2") {
			t.Error("w2 once w1 is recorded: not its turn")
		}
		if _, err := s.TakeResendTurn(ctx, "w1", time.Minute); !errors.Is(err, ErrInvalidState) {
			t.Errorf("TakeResendTurn of w1, no longer sent: %v, want ErrInvalidState", err)
		}
	})
}
