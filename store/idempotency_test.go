package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"strangler/domain"
)

// keyed is the client's request the keyed tests send: PUT of a body.
func keyed(key, body string) domain.IdempotencyKey {
	return domain.NewIdempotencyKey(key, "PUT", "/patients/42?notify=1", []byte(body))
}

// begin sends intent id under k and returns what the store made of it.
func begin(t *testing.T, s *Store, id string, k domain.IdempotencyKey) domain.KeyedWrite {
	t.Helper()
	kw, err := s.BeginKeyedWrite(context.Background(), intent(id, "/patients/42"), k, time.Minute)
	if err != nil {
		t.Fatalf("BeginKeyedWrite(%s): %v", id, err)
	}
	return kw
}

func journaled(t *testing.T, s *Store) int {
	t.Helper()
	all, err := s.ListRepairs(context.Background(), RepairFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

func TestIdempotencyKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := newStore(t, b, clk)

		t.Run("a key's first use journals the write", func(t *testing.T) {
			k := keyed("first", `{"a":1}`)
			if got := begin(t, s, "f1", k); got != (domain.KeyedWrite{Use: domain.KeyJournaled, ID: "f1"}) {
				t.Fatalf("got %+v, want journaled as f1", got)
			}
			if got := state(t, s, "f1"); got != domain.StateSent {
				t.Errorf("got %s, want sent", got)
			}
			t.Run("the same request while it is with the primary is in flight", func(t *testing.T) {
				if got := begin(t, s, "f2", k); got.Use != domain.KeyInFlight {
					t.Errorf("got %+v, want in flight", got)
				}
			})
			t.Run("the same key with another method, target or body is another request", func(t *testing.T) {
				for _, other := range []domain.IdempotencyKey{
					domain.NewIdempotencyKey("first", "POST", "/patients/42?notify=1", []byte(`{"a":1}`)),
					domain.NewIdempotencyKey("first", "PUT", "/patients/43?notify=1", []byte(`{"a":1}`)),
					domain.NewIdempotencyKey("first", "PUT", "/patients/42?notify=0", []byte(`{"a":1}`)),
					domain.NewIdempotencyKey("first", "PUT", "/patients/42?notify=1", []byte(`{"a": 1}`)),
				} {
					if got := begin(t, s, "f3", other); got.Use != domain.KeyReused {
						t.Errorf("got %+v, want reused", got)
					}
				}
			})
			if got := journaled(t, s); got != 1 {
				t.Errorf("%d writes journaled, want 1", got)
			}
		})

		t.Run("retries after the primary applied the write are journaled no second time", func(t *testing.T) {
			k := keyed("applied", `{"a":2}`)
			begin(t, s, "a1", k)
			if err := s.RecordOutcome(ctx, "a1", domain.Outcome{Status: 201}); err != nil {
				t.Fatal(err)
			}
			before := journaled(t, s)
			if got := begin(t, s, "a2", k); got != (domain.KeyedWrite{Use: domain.KeyApplied}) {
				t.Errorf("pending: got %+v, want applied", got)
			}
			_, ok, err := s.ClaimRepair(ctx, "a1", "w", time.Minute)
			if err != nil || !ok {
				t.Fatalf("claiming a1: %v, claimed %v", err, ok)
			}
			if err := s.CompleteRepair(ctx, "a1", "w"); err != nil {
				t.Fatal(err)
			}
			if got := begin(t, s, "a3", k); got.Use != domain.KeyApplied {
				t.Errorf("done: got %+v, want applied", got)
			}
			if got := journaled(t, s); got != before {
				t.Errorf("%d writes journaled, want %d", got, before)
			}
		})

		t.Run("a write an operator discarded after the primary applied it counts as applied", func(t *testing.T) {
			k := keyed("discarded-applied", `{}`)
			begin(t, s, "da1", k)
			if err := s.RecordOutcome(ctx, "da1", domain.Outcome{Status: 200}); err != nil {
				t.Fatal(err)
			}
			if err := s.DiscardRepair(ctx, "da1", domain.AuditEntry{Action: "repair_discard"}); err != nil {
				t.Fatal(err)
			}
			if got := begin(t, s, "da2", k); got.Use != domain.KeyApplied {
				t.Errorf("got %+v, want applied", got)
			}
		})

		t.Run("a retry of a write the primary refused is a new write under the key", func(t *testing.T) {
			k := keyed("refused", `{"a":3}`)
			begin(t, s, "r1", k)
			if err := s.RecordOutcome(ctx, "r1", domain.Outcome{Status: 503}); err != nil {
				t.Fatal(err)
			}
			if got := begin(t, s, "r2", k); got != (domain.KeyedWrite{Use: domain.KeyJournaled, ID: "r2"}) {
				t.Fatalf("got %+v, want journaled as r2", got)
			}
			if got := begin(t, s, "r3", k); got.Use != domain.KeyInFlight {
				t.Errorf("while r2 is with the primary: got %+v, want in flight", got)
			}
			if err := s.RecordOutcome(ctx, "r2", domain.Outcome{Status: 201}); err != nil {
				t.Fatal(err)
			}
			if got := begin(t, s, "r4", k); got.Use != domain.KeyApplied {
				t.Errorf("once r2 was applied: got %+v, want applied", got)
			}
		})

		t.Run("a retry of a write whose outcome was lost settles it", func(t *testing.T) {
			k := keyed("unknown", `{"a":4}`)
			begin(t, s, "u1", k)
			if err := s.MarkUnknown(ctx, "u1"); err != nil {
				t.Fatal(err)
			}
			if got := begin(t, s, "u2", k); got != (domain.KeyedWrite{Use: domain.KeyResumed, ID: "u1"}) {
				t.Fatalf("got %+v, want u1 resumed", got)
			}
			if got := state(t, s, "u1"); got != domain.StateSent {
				t.Errorf("got %s, want sent again", got)
			}
			if got := begin(t, s, "u3", k); got.Use != domain.KeyInFlight {
				t.Errorf("while u1 is with the primary again: got %+v, want in flight", got)
			}
			if err := s.RecordOutcome(ctx, "u1", domain.Outcome{Status: 200}); err != nil {
				t.Fatal(err)
			}
			if got := state(t, s, "u1"); got != domain.StatePending {
				t.Errorf("got %s, want pending", got)
			}
		})

		t.Run("a retry of an unknown write an operator discarded is a new write", func(t *testing.T) {
			k := keyed("unknown-discarded", `{}`)
			begin(t, s, "ud1", k)
			if err := s.MarkUnknown(ctx, "ud1"); err != nil {
				t.Fatal(err)
			}
			if err := s.DiscardRepair(ctx, "ud1", domain.AuditEntry{Action: "repair_discard"}); err != nil {
				t.Fatal(err)
			}
			if got := begin(t, s, "ud2", k); got != (domain.KeyedWrite{Use: domain.KeyJournaled, ID: "ud2"}) {
				t.Errorf("got %+v, want journaled as ud2", got)
			}
		})

		t.Run("after the route's primary changed, only a write the old one refused can be retried", func(t *testing.T) {
			onModern := func(id string, k domain.IdempotencyKey) domain.KeyedWrite {
				t.Helper()
				in := intent(id, "/patients/42")
				in.Primary = "modern"
				kw, err := s.BeginKeyedWrite(ctx, in, k, time.Minute)
				if err != nil {
					t.Fatal(err)
				}
				return kw
			}
			applied, unknown, refused := keyed("moved-applied", `{}`), keyed("moved-unknown", `{}`), keyed("moved-refused", `{}`)
			begin(t, s, "m1", applied)
			begin(t, s, "m2", unknown)
			begin(t, s, "m3", refused)
			if err := s.RecordOutcome(ctx, "m1", domain.Outcome{Status: 201}); err != nil {
				t.Fatal(err)
			}
			if err := s.MarkUnknown(ctx, "m2"); err != nil {
				t.Fatal(err)
			}
			if err := s.RecordOutcome(ctx, "m3", domain.Outcome{Status: 400}); err != nil {
				t.Fatal(err)
			}
			for k, want := range map[domain.IdempotencyKey]domain.KeyedWrite{
				applied: {Use: domain.KeyMoved}, unknown: {Use: domain.KeyMoved}, refused: {Use: domain.KeyJournaled, ID: "m6"},
			} {
				if got := onModern("m6", k); got != want {
					t.Errorf("got %+v, want %+v", got, want)
				}
			}
			if got := state(t, s, "m2"); got != domain.StateUnknown {
				t.Errorf("the unknown write is %s, want unknown still, for an operator", got)
			}
		})

		t.Run("keys are remembered a day, and the writes they name as long", func(t *testing.T) {
			k := keyed("swept", `{"a":5}`)
			begin(t, s, "s1", k)
			if err := s.RecordOutcome(ctx, "s1", domain.Outcome{Status: 503}); err != nil {
				t.Fatal(err)
			}
			clk.Advance(24*time.Hour - time.Second) // the README's day, written out
			if _, err := s.PurgeRepairs(ctx, 0); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetRepair(ctx, "s1", false); err != nil {
				t.Errorf("a skipped write its key still names was purged: %v", err)
			}
			if got := begin(t, s, "s2", keyed("swept", `{"other":true}`)); got.Use != domain.KeyReused {
				t.Errorf("a second before a day passed: got %+v, want the key still known", got)
			}
			clk.Advance(2 * time.Second)
			if _, err := s.PurgeRepairs(ctx, 0); err != nil {
				t.Fatal(err)
			}
			if _, err := s.GetRepair(ctx, "s1", false); err == nil {
				t.Error("the skipped write is kept after its key was forgotten")
			}
			if got := begin(t, s, "s3", keyed("swept", `{"other":true}`)); got != (domain.KeyedWrite{Use: domain.KeyJournaled, ID: "s3"}) {
				t.Errorf("after a day: got %+v, want the key free for a new write", got)
			}
		})
	})
}

func TestIdempotencyKeysUnderConcurrency(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		s := newStore(t, b, nil)
		const tries = 8
		// send makes tries requests with key k at once and counts what
		// each became.
		send := func(t *testing.T, prefix string, k domain.IdempotencyKey) map[domain.KeyUse]int {
			t.Helper()
			var mu sync.Mutex
			uses := map[domain.KeyUse]int{}
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range tries {
				wg.Go(func() {
					<-start
					kw, err := s.BeginKeyedWrite(ctx, intent(fmt.Sprintf("%s-%d", prefix, i), "/patients/42"), k, time.Minute)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						uses[0]++
						return
					}
					uses[kw.Use]++
				})
			}
			close(start)
			wg.Wait()
			return uses
		}
		want := map[domain.KeyUse]int{domain.KeyJournaled: 1, domain.KeyInFlight: tries - 1}
		k := keyed("race", `{"a":1}`)

		t.Run("of concurrent first uses of a key one journals the write", func(t *testing.T) {
			if got := send(t, "c", k); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got %v, want %v (1 journaled, the rest in flight; 0 counts errors)", got, want)
			}
			if got := journaled(t, s); got != 1 {
				t.Errorf("%d writes journaled, want 1", got)
			}
		})
		t.Run("of concurrent retries of a refused write one journals it again", func(t *testing.T) {
			all, err := s.ListRepairs(ctx, RepairFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.RecordOutcome(ctx, all[0].ID, domain.Outcome{Status: 500}); err != nil {
				t.Fatal(err)
			}
			if got := send(t, "d", k); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("got %v, want %v", got, want)
			}
			if got := journaled(t, s); got != 2 {
				t.Errorf("%d writes journaled, want 2", got)
			}
		})
	})
}

// TestIdempotencyKeysAreKeptAsKeyedDigests checks that neither a client's
// key nor a hash anyone can compute from it (or from the request) is
// kept: a key that is an MRN, or a short body, could otherwise be found
// by hashing guesses.
func TestIdempotencyKeysAreKeptAsKeyedDigests(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := newStore(t, b, newClock())
		k := keyed("MRN9988776", `{"name":"Ada"}`)
		begin(t, s, "d1", k)
		var key, fingerprint string
		if err := s.db.QueryRow(`SELECT key, fingerprint FROM strangler_idempotency_keys`).Scan(&key, &fingerprint); err != nil {
			t.Fatal(err)
		}
		for _, unkeyed := range []string{"MRN9988776", k.Key, k.Fingerprint} {
			if key == unkeyed || fingerprint == unkeyed {
				t.Errorf("the store keeps %q, which anyone can compute from the request", unkeyed)
			}
		}
		if want := s.hasher.Digest("idempotency-key", k.Key); key != want {
			t.Errorf("kept key %q, want the keyed digest %q", key, want)
		}
	})
}
