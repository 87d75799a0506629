package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// TestAnAuditedChangeWhoseCommitLostItsAnswerIsReadBack: the COMMIT of
// an audited change (here an audit entry of its own) goes out and the
// connection breaks. Reached by the server, the change was made, and
// the store answers so; cut before it reached the server, nothing was
// written, and the error says so (no longer uncertain); with the store
// gone since, it cannot tell, and the error is ErrUnconfirmed. Before,
// all three failed alike, as uncertain, the first while it was made.
func TestAnAuditedChangeWhoseCommitLostItsAnswerIsReadBack(t *testing.T) {
	entry := domain.AuditEntry{Actor: "bob", Action: "repair_retry", Detail: "w-1", Reason: "ticket 42"}
	for _, tc := range []struct {
		name    string
		breakIt func(p *testdb.Proxy)
		// then, if set, runs while the change waits for its answer.
		then    func(t *testing.T, p *testdb.Proxy, observer *Store)
		entries int
		check   func(s *Store, err error) bool
		want    string
	}{
		{"the answer to COMMIT lost", func(p *testdb.Proxy) { p.MuteOn("commit") }, func(t *testing.T, p *testdb.Proxy, observer *Store) {
			testkit.Eventually(t, 10*time.Second, "the entry committed", func() bool { return auditCount(t, observer) == 1 })
			p.Reset()
		}, 1, func(_ *Store, err error) bool { return err == nil }, "no error: it was made"},
		{"COMMIT cut before it reached the server", func(p *testdb.Proxy) { p.CutOn("commit") }, nil, 0,
			func(s *Store, err error) bool {
				return err != nil && !s.Uncertain(err) && !errors.Is(err, ErrUnconfirmed)
			},
			"an error that is not uncertain: nothing was written"},
		{"the store gone as COMMIT went out", func(p *testdb.Proxy) { p.GoneOn("commit") }, nil, 0,
			func(s *Store, err error) bool { return errors.Is(err, ErrUnconfirmed) && s.Uncertain(err) },
			"ErrUnconfirmed: whether it was made cannot be read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			direct := testdb.Postgres(t)
			proxy, dsn := testdb.NewProxy(t, direct)
			s := openStore(t, dsn, nil)
			observer := openStore(t, direct, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tc.breakIt(proxy)
			done := make(chan error, 1)
			go func() { done <- s.AppendAudit(ctx, entry) }()
			if tc.then != nil {
				tc.then(t, proxy, observer)
			}
			err := <-done
			if !tc.check(s, err) {
				t.Errorf("AppendAudit: got %v, want %s", err, tc.want)
			}
			if got := auditCount(t, observer); got != tc.entries {
				t.Errorf("the audit log holds %d entries, want %d", got, tc.entries)
			}
		})
	}
}

// TestATransactionIDAnotherTookIsNotTakenForTheChange: a standby
// promoted before it had a change's transaction gives that id to a
// transaction of its own, which commits. The server then says the id
// committed; the change's audit entry, not in the log (or another entry
// at its id), says it was not made, and that is the answer, as it is for
// an id the server does not know.
func TestATransactionIDAnotherTookIsNotTakenForTheChange(t *testing.T) {
	s := openStore(t, testdb.Postgres(t), nil)
	ctx := context.Background()
	if err := s.AppendAudit(ctx, domain.AuditEntry{Actor: "alice", Action: "repair_retry", Detail: "w-1"}); err != nil {
		t.Fatal(err)
	}
	head, err := s.AuditHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var other int64 // the promoted standby's own transaction, committed
	if err := s.db.QueryRowContext(ctx, `SELECT txid_current()`).Scan(&other); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mark txMark
		made bool
	}{
		{"its entry in the log", txMark{xid: other, headID: head.ID, headHash: head.Hash}, true},
		{"its entry not in the log", txMark{xid: other, headID: head.ID + 1, headHash: head.Hash}, false},
		// The standby's own entry took the change's id: its hash is not the change's.
		{"another entry at its entry's id", txMark{xid: other, headID: head.ID, headHash: "another"}, false},
		// An id the server never gave out: its entry says enough.
		{"its entry not in the log and its id unknown", txMark{xid: other + 1_000_000, headID: head.ID + 1, headHash: head.Hash}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			made, err := s.committed(ctx, tc.mark)
			if err != nil || made != tc.made {
				t.Errorf("committed: got %t %v, want %t", made, err, tc.made)
			}
		})
	}
}
