package store

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testdb"
)

// canary is a patient identifier planted in every part of a write: no
// table may hold it in clear once the store is encrypted, or once the
// write is settled.
const canary = "MRN9988776"

// canaryIntent is a write that carries the canary in its path, query,
// headers and body.
func canaryIntent(id string) domain.Intent {
	return domain.Intent{
		ID: id, Route: "update-patient", Resource: "/patients/" + canary,
		ResourceView: "/patients/{id:h:0123456789abcdef}",
		Method:       http.MethodPut, Target: "/patients/" + canary + "?mrn=" + canary,
		Header:  http.Header{"Content-Type": {"application/json"}, "X-Patient": {canary}},
		Body:    []byte(`{"mrn":"` + canary + `"}`),
		Primary: "legacy",
	}
}

func openWith(t *testing.T, dsn string, clk *testClock, keys ...[32]byte) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, dsn, testLogger(t), WithEncryption(keys))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	if clk != nil {
		s.now = clk.Now
	}
	return s
}

func key(b byte) [32]byte {
	var k [32]byte
	for i := range k {
		k[i] = b
	}
	return k
}

// holding returns where in the store's tables the canary is in clear:
// table.column, sorted, each once.
func holding(t *testing.T, s *Store) []string {
	t.Helper()
	cells, err := testdb.Contents(context.Background(), s.db, s.dialect.name)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cells {
		if bytes.Contains(c.Value, []byte(canary)) {
			out = append(out, c.Table+"."+c.Column)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// plantEverywhere journals a pending write with the canary in its request
// and in the primary's answer, a sample holding it in a kept value, and a
// queued read-repair key that is the canary.
func plantEverywhere(t *testing.T, s *Store, id string) {
	t.Helper()
	ctx := context.Background()
	if err := s.BeginWrite(ctx, canaryIntent(id), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordOutcome(ctx, id, domain.Outcome{Status: 201, Location: "/patients/" + canary, PrimaryID: canary}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddSample(ctx, "get-patient", s.now(), []byte(`{"kept":"`+canary+`"}`), 10); err != nil {
		t.Fatal(err)
	}
	if err := s.AddRepairKey(ctx, "patients", canary); err != nil {
		t.Fatal(err)
	}
}

// readsBack checks that what plantEverywhere stored reads back in clear.
func readsBack(t *testing.T, s *Store, id string) {
	t.Helper()
	ctx := context.Background()
	r, err := s.GetRepair(ctx, id, true)
	if err != nil {
		t.Fatalf("GetRepair: %v", err)
	}
	in := canaryIntent(id)
	if r.Target != in.Target || r.Header.Get("X-Patient") != canary || string(r.Body) != string(in.Body) ||
		r.Outcome.Location != "/patients/"+canary || r.Outcome.PrimaryID != canary {
		t.Errorf("got %q %v %q %+v, want the write as journaled", r.Target, r.Header, r.Body, r.Outcome)
	}
	samples, err := s.Samples(ctx, "get-patient", 10)
	if err != nil || len(samples) == 0 || samples[0].Err != nil || !strings.Contains(string(samples[0].Data), canary) {
		t.Errorf("got samples %+v, %v, want the sample back", samples, err)
	}
	keys, err := s.PendingRepairKeys(ctx, "patients", 10)
	if err != nil || !slices.Contains(keys, canary) {
		t.Errorf("got repair keys %v, %v, want %s", keys, err, canary)
	}
}

func TestAnEncryptedStoreHoldsNothingOfARequestInClear(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openWith(t, b.fresh(t), newClock(), key(1))
		plantEverywhere(t, s, "w1")
		if where := holding(t, s); len(where) > 0 {
			t.Errorf("the canary is in clear in %v", where)
		}
		readsBack(t, s, "w1")
		rs, err := s.ClaimRepairs(context.Background(), "worker", 10, time.Minute)
		if err != nil || len(rs) != 1 || rs[0].PayloadErr != nil || string(rs[0].Body) != string(canaryIntent("w1").Body) {
			t.Errorf("claimed %+v, %v, want the write with its body", rs, err)
		}
	})
}

func TestAnUnencryptedStoreSaysWhatItKeepsInClear(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		s := openWith(t, b.fresh(t), newClock())
		plantEverywhere(t, s, "w1")
		// Without store_encryption a pending write's request is kept as it
		// came, and so is a queued read-repair key; never its resource.
		want := []string{
			"strangler_repair_keys.key", "strangler_repairs.body", "strangler_repairs.header",
			"strangler_repairs.location", "strangler_repairs.primary_id", "strangler_repairs.target",
			"strangler_samples.sample",
		}
		if got := holding(t, s); !slices.Equal(got, want) {
			t.Errorf("the canary is in clear in %v, want only in %v", got, want)
		}
	})
}

func TestASettledWriteKeepsItsMetadataButNothingOfItsRequest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := openWith(t, b.fresh(t), clk)
		begin := func(id string) {
			t.Helper()
			if err := s.BeginWrite(ctx, canaryIntent(id), time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		accept := func(id string) {
			t.Helper()
			if err := s.RecordOutcome(ctx, id, domain.Outcome{Status: 201, Location: "/patients/" + canary, PrimaryID: canary}); err != nil {
				t.Fatal(err)
			}
		}
		begin("applied")
		accept("applied")
		rs, err := s.ClaimRepairs(ctx, "worker", 10, time.Minute)
		if err != nil || len(rs) != 1 {
			t.Fatalf("claimed %v, %v", ids(rs), err)
		}
		if err := s.CompleteRepair(ctx, "applied", "worker"); err != nil {
			t.Fatal(err)
		}
		begin("refused")
		if err := s.RecordOutcome(ctx, "refused", domain.Outcome{Status: 409, Location: "/patients/" + canary}); err != nil {
			t.Fatal(err)
		}
		begin("given-up")
		accept("given-up")
		if err := s.DiscardRepair(ctx, "given-up", domain.AuditEntry{Action: "repair_discard"}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"applied", "refused", "given-up"} {
			r, err := s.GetRepair(ctx, id, true)
			if err != nil {
				t.Fatal(err)
			}
			if r.Target != "" || len(r.Header) != 0 || r.Body != nil || r.Outcome.Location != "" || r.Outcome.PrimaryID != "" {
				t.Errorf("%s (%s): got target %q, header %v, body %q, outcome %+v, want all erased", id, r.State, r.Target, r.Header, r.Body, r.Outcome)
			}
			if r.Route != "update-patient" || r.Method != http.MethodPut || r.Resource != canaryIntent(id).ResourceView || r.Outcome.Status == 0 {
				t.Errorf("%s: got %+v, want its route, method, resource and status kept", id, r.RepairSummary)
			}
		}
		if where := holding(t, s); len(where) > 0 {
			t.Errorf("settled writes left the canary in %v", where)
		}

		// Dead and unknown writes keep their body for an operator.
		begin("dead")
		accept("dead")
		if _, err := s.ClaimRepairs(ctx, "worker", 10, time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.FailRepair(ctx, "dead", "worker", "the secondary answered 400", 0, true); err != nil {
			t.Fatal(err)
		}
		begin("unknown")
		if err := s.MarkUnknown(ctx, "unknown"); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"dead", "unknown"} {
			r, err := s.GetRepair(ctx, id, true)
			if err != nil || string(r.Body) != string(canaryIntent(id).Body) {
				t.Errorf("%s: got body %q, %v, want it kept until delivered or discarded", id, r.Body, err)
			}
		}
	})
}

func TestTheSweepErasesWhatEarlierReleasesKeptAndHashesTheirResources(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		clk := newClock()
		s := openWith(t, b.fresh(t), clk)
		// Rows as a release before migration 0030 wrote them: the resource
		// in clear, no view, and a delivered write's body still there.
		old := func(id, state string, seq int) {
			t.Helper()
			in := canaryIntent(id)
			if _, err := s.db.ExecContext(ctx, `
				INSERT INTO strangler_repairs (id, route, resource, method, target, header, body, primary_side,
					state, seq, status, next_attempt_at, created_at, updated_at)
				VALUES ($1, 'update-patient', $2, 'PUT', $3, $4, $5, 'legacy', $6, $7, 200, $9, $8, $8)`,
				id, in.Resource, in.Target, encodeHeader(in.Header), in.Body, state, seq, s.ts(clk.Now()), s.ts(longAgo)); err != nil {
				t.Fatal(err)
			}
		}
		old("old-done", "done", 1)
		old("old-pending", "pending", 2)
		if _, err := s.db.ExecContext(ctx, `UPDATE strangler_sequences SET value = 2`); err != nil && b.name == "sqlite" {
			t.Fatal(err)
		} else if b.name == "postgres" {
			if _, err := s.db.ExecContext(ctx, `SELECT setval('strangler_repair_seq', 2)`); err != nil {
				t.Fatal(err)
			}
		}
		n, err := s.SweepRepairs(ctx)
		if err != nil || n != 1 {
			t.Fatalf("SweepRepairs = %d, %v, want 1 payload erased", n, err)
		}
		r, err := s.GetRepair(ctx, "old-done", true)
		if err != nil || r.Body != nil || r.Target != "" {
			t.Errorf("the delivered write kept %q %q, %v", r.Target, r.Body, err)
		}
		if r.ResourceKey != s.resourceKey("/patients/"+canary) || strings.Contains(r.Resource, canary) {
			t.Errorf("got resource %q key %q, want the path hashed", r.Resource, r.ResourceKey)
		}
		// A write journaled now to the same resource waits behind the old
		// pending one, as before the upgrade.
		if err := s.BeginWrite(ctx, canaryIntent("new"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordOutcome(ctx, "new", domain.Outcome{Status: 200}); err != nil {
			t.Fatal(err)
		}
		if got := claimIDs(t, s, "worker"); !slices.Equal(got, []string{"old-pending"}) {
			t.Errorf("claimed %v, want only the old pending write: the new one waits behind it", got)
		}
		if where := holding(t, s); !slices.Equal(where, []string{"strangler_repairs.body", "strangler_repairs.header", "strangler_repairs.target"}) {
			t.Errorf("the canary is in %v, want it only in the pending writes' requests", where)
		}
	})
}

func TestKeysRotateWithoutLosingAnything(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.fresh(t)
		clk := newClock()
		// In clear at first, then under key 1, then under key 2.
		plain := openWith(t, dsn, clk)
		plantEverywhere(t, plain, "w-clear")
		hash := plain.Hasher().Hash(canary)
		plain.Close()

		one := openWith(t, dsn, clk, key(1))
		plantEverywhere(t, one, "w-one")
		rep, err := one.Rekey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Repairs != 1 || rep.Samples != 1 || rep.RepairKeys != 1 || rep.Secrets != 1 || rep.Unreadable != 0 {
			t.Errorf("rekey encrypted %+v, want the clear write, sample, repair key and hash key", rep)
		}
		if where := holding(t, one); len(where) > 0 {
			t.Errorf("after rekey the canary is in clear in %v", where)
		}
		one.Close()

		// The new key first, the old one still listed: everything reads.
		both := openWith(t, dsn, clk, key(2), key(1))
		readsBack(t, both, "w-clear")
		readsBack(t, both, "w-one")
		if rep, err = both.Rekey(ctx); err != nil {
			t.Fatal(err)
		}
		if rep.Repairs != 2 || rep.Samples != 2 || rep.Secrets != 1 || rep.Unreadable != 0 {
			t.Errorf("rekey under key 2 re-encrypted %+v, want both writes and samples and the hash key", rep)
		}
		if again, err := both.Rekey(ctx); err != nil || again != (RekeyReport{}) {
			t.Errorf("a second rekey did %+v, %v, want nothing", again, err)
		}
		both.Close()

		// The old key dropped: nothing is lost, and hashes are unchanged.
		two := openWith(t, dsn, clk, key(2))
		readsBack(t, two, "w-clear")
		readsBack(t, two, "w-one")
		if got := two.Hasher().Hash(canary); got != hash {
			t.Errorf("the hash of a value changed across rotation: %s, was %s", got, hash)
		}
	})
}

func TestALostKeyLosesOnlyTheBodies(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.fresh(t)
		clk := newClock()
		one := openWith(t, dsn, clk, key(1))
		plantEverywhere(t, one, "w1")
		hash := one.Hasher().Hash(canary)
		one.Close()

		other := openWith(t, dsn, clk, key(2))
		r, err := other.GetRepair(ctx, "w1", false)
		if err != nil || r.State != domain.StatePending || r.Route != "update-patient" {
			t.Errorf("without its body: got %+v, %v, want the write's metadata", r.RepairSummary, err)
		}
		_, err = other.GetRepair(ctx, "w1", true)
		if !errors.Is(err, ErrKeyLost) || !strings.Contains(err.Error(), "store_encryption.keys") || !strings.Contains(err.Error(), "intact") {
			t.Errorf("with its body: got %v, want ErrKeyLost saying which key is missing and that the rest is intact", err)
		}
		rs, err := other.ClaimRepairs(ctx, "worker", 10, time.Minute)
		if err != nil || len(rs) != 1 || !errors.Is(rs[0].PayloadErr, ErrKeyLost) {
			t.Errorf("claimed %+v, %v, want the write with PayloadErr, the claim itself working", rs, err)
		}
		samples, err := other.Samples(ctx, "", 10)
		if err != nil || len(samples) != 1 || !errors.Is(samples[0].Err, ErrKeyLost) || samples[0].Route != "get-patient" {
			t.Errorf("got samples %+v, %v, want one unreadable sample of get-patient", samples, err)
		}
		keys, err := other.PendingRepairKeys(ctx, "patients", 10)
		if err != nil || len(keys) != 0 {
			t.Errorf("got repair keys %v, %v, want none: an unreadable one is dropped", keys, err)
		}
		if n, _ := other.CountRepairKeys(ctx, "patients"); n != 0 {
			t.Errorf("%d unreadable repair keys still queued, want them dropped", n)
		}
		if other.Hasher().Hash(canary) == hash {
			t.Error("the hash key encrypted with the lost key still hashes: it was not replaced")
		}
	})
}

func TestTheHashKeyIsOnePerStore(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.fresh(t)
		a := openWith(t, dsn, nil, key(1))
		second := openWith(t, dsn, nil, key(1))
		if a.Hasher().Hash(canary) != second.Hasher().Hash(canary) {
			t.Error("two stores on one database hash a value differently")
		}
		hash := a.Hasher().Hash(canary)
		a.Close()
		second.Close()
		if got := openWith(t, dsn, nil, key(1)).Hasher().Hash(canary); got != hash {
			t.Errorf("after a restart a value hashes as %s, was %s", got, hash)
		}
		if other := openWith(t, b.fresh(t), nil, key(1)); other.Hasher().Hash(canary) == hash {
			t.Error("two stores share a hash key")
		}
	})
}

func TestRekeyWithoutKeysRefuses(t *testing.T) {
	s := openWith(t, backends()[0].fresh(t), nil)
	if _, err := s.Rekey(context.Background()); err == nil || !strings.Contains(err.Error(), "store_encryption") {
		t.Errorf("got %v, want a refusal naming store_encryption", err)
	}
}
