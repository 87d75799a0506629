package control

import (
	"net/http"
	"testing"
	"time"

	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// TestAReplicaThatKnowsItsStoreIsSilentDoesNotWaitALeaseForItsWrites:
// replica b follows the store as serve runs it, and the store stops
// answering (packets dropped: each read waits for its timeout). Once b
// knows it (a read failed) and its lease lapsed, a write it sends
// straight to legacy goes at once on its last flags, counted, not after
// waiting a lease for a read that cannot come: every write of the API
// would take a second longer for as long as the store is down. Mutation
// round mut5: Follows asking for a read while b knows it is cut off
// (reachable ignored, or its storeOK check dropped) passed every test;
// this one fails on either (the write waits the lease).
func TestAReplicaThatKnowsItsStoreIsSilentDoesNotWaitALeaseForItsWrites(t *testing.T) {
	dsn := testdb.Postgres(t)
	proxy, proxied := testdb.NewProxy(t, dsn)
	legacy, modern := newRecordingBackend(t), newRecordingBackend(t)
	b := newFollowingReplica(t, proxied, legacy.URL, modern.URL)
	follow(t, b.flags)

	proxy.Silence()
	testkit.Eventually(t, 3*storeTimeout, "replica b knows its store does not answer and its lease lapsed", func() bool {
		ok, _ := b.flags.StoreOK()
		return !ok && !b.flags.leased()
	})
	began := time.Now()
	resp, answer := b.send(t, "/items/1", `{"v":1}`)
	if waited := time.Since(began); waited >= followLease {
		t.Errorf("a write through replica b, which knows its store does not answer, took %v, want less than the lease (%v): no read can renew it", waited, followLease)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a write through replica b without the store: got %d %s, want 200 from legacy", resp.StatusCode, answer)
	}
	if _, ok := legacy.body("/items/1"); !ok {
		t.Errorf("legacy did not get the write sent on b's last flags")
	}
	if n, _ := staleWrites(t, b); n != 1 {
		t.Errorf("strangler_stale_flags_writes_total{route=put-item} is %v, want 1", n)
	}
}

// TestAWriteWhoseLeaseLapsedGoesOnceTheStoreIsReadAgain: replica b reads
// the flags only for its writes (its Run not started), so its lease has
// lapsed when a write comes; the store answers. The write goes once the
// flags are read again, not after the most it may wait (the lease): a
// replica whose re-reads fell behind would otherwise add a second to
// each write. Mutation round mut5: renew waiting out its bound whatever
// the read (the read's end not awaited) passed every test; this one
// fails on it.
func TestAWriteWhoseLeaseLapsedGoesOnceTheStoreIsReadAgain(t *testing.T) {
	dsn := testdb.Postgres(t)
	legacy, modern := newRecordingBackend(t), newRecordingBackend(t)
	b := newFollowingReplica(t, dsn, legacy.URL, modern.URL)
	testkit.Eventually(t, 5*followLease, "replica b's lease lapsed", func() bool { return !b.flags.leased() })

	began := time.Now()
	if code := b.put(t, "/items/1", `{"v":1}`); code != http.StatusOK {
		t.Fatalf("a write through replica b: got %d, want 200", code)
	}
	if waited := time.Since(began); waited >= followLease {
		t.Errorf("a write through replica b took %v, want less than the lease (%v): the store answers its read at once", waited, followLease)
	}
	if n, _ := staleWrites(t, b); n != 0 {
		t.Errorf("strangler_stale_flags_writes_total{route=put-item} is %v, want 0: b read its flags again", n)
	}
}
