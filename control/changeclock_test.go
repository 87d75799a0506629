package control

import (
	"context"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"strangler/force"
	"strangler/internal/testdb"
	"strangler/store"
)

// TestAChangeRequestLasts24HoursOnEveryReplicasClock: replicas share one
// PostgreSQL store; b's clock is two hours behind a's (and the store's).
// A request made on b still waits 24 hours, not 22, for the leader a to
// expire it; and 24 hours and a minute after a request made on a, b
// refuses to approve it, where it used to apply it until two hours
// after its expiry.
func TestAChangeRequestLasts24HoursOnEveryReplicasClock(t *testing.T) {
	dsn := testdb.Postgres(t)
	ctx := context.Background()
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	const behind = 2 * time.Hour
	a := newPlaneWith(t, planeOptions{dsn: dsn, yaml: "approvals: 2\n", clock: &clock{t: start}})
	b := newPlaneWith(t, planeOptions{dsn: dsn, yaml: "approvals: 2\n", clock: &clock{t: start.Add(-behind)}, storeLead: behind})
	advance := func(d time.Duration) {
		a.clock.Advance(d)
		b.clock.Advance(d)
	}

	id := b.requestFlip(t, "create-patient", bobToken, `{"mode": "shadow", "reason": "copy reads"}`)
	advance(23 * time.Hour)
	a.rollouts.Check(ctx)
	a.rollouts.Check(ctx)
	if c, err := a.rollouts.Change(ctx, id); err != nil || c.State != store.ChangePending {
		t.Fatalf("made on the replica behind, 23 h later the request is %s (%v), want pending", c.State, err)
	}
	if resp, body := a.decide(t, id, "reject", aliceToken, "not now"); resp.StatusCode != http.StatusOK {
		t.Fatalf("rejecting it: %d %v", resp.StatusCode, body)
	}

	a.flags.resync(ctx)
	b.flags.resync(ctx)
	id = a.requestFlip(t, "create-patient", bobToken, `{"mode": "shadow", "reason": "copy reads"}`)
	advance(24*time.Hour + time.Minute)
	resp, body := b.decide(t, id, "approve", aliceToken, "")
	if msg, _ := body["error"].(string); resp.StatusCode != http.StatusConflict || !strings.Contains(msg, "expired") {
		t.Errorf("approving on the replica behind, 24 h 1 min after the request: got %d %q, want 409 saying it expired", resp.StatusCode, msg)
	}
	b.flags.resync(ctx)
	if got := b.served("create-patient"); got != "legacy" {
		t.Errorf("create-patient is served %s, want legacy: an expired request was applied", got)
	}
}

// TestARampStartedOnAReplicaAheadStepsOnTime: b's clock is two hours
// ahead of the leader a's (and the store's). A ramp started on b takes
// its first step at the leader's next round, as the ramp's audit entry
// says ("the first step now"), not two hours later; the next one every
// 30 minutes after, which b shows as such.
func TestARampStartedOnAReplicaAheadStepsOnTime(t *testing.T) {
	dsn := testdb.Postgres(t)
	ctx := context.Background()
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	const ahead = 2 * time.Hour
	a := newPlaneWith(t, planeOptions{dsn: dsn, clock: &clock{t: start}})
	b := newPlaneWith(t, planeOptions{dsn: dsn, clock: &clock{t: start.Add(ahead)}, storeLead: -ahead})
	a.atZero(t)
	b.flags.resync(ctx)
	a.rollouts.Check(ctx)
	if !a.rollouts.leading {
		t.Fatal("a does not lead")
	}
	b.startRamp(t, "get-patient", `{"steps": [1, 5, 25], "every": "30m"}`)
	a.clock.Advance(time.Second)
	a.rollouts.Check(ctx)
	if got, want := a.served("get-patient"), "fallback 1%"; got != want {
		t.Fatalf("the leader's next round after the start: got %s, want %s", got, want)
	}
	// b shows the next step half an hour away, as a does, not due for
	// an hour and a half already.
	_, route := b.call(t, "GET", "/admin/routes/get-patient", veraToken, "")
	ramp, _ := route["ramp"].(map[string]any)
	if in, _ := ramp["next_in_seconds"].(float64); in < 1700 || in > 1860 {
		t.Errorf("the replica ahead shows the next step in %v s, want about 1800 (%v)", ramp["next_in_seconds"], ramp)
	}
	a.clock.Advance(30 * time.Minute)
	a.rollouts.Check(ctx)
	if got, want := a.served("get-patient"), "fallback 5%"; got != want {
		t.Errorf("30 minutes on: got %s, want %s", got, want)
	}
}

// TestAForceValueIsStampedOnTheStoresClock: the replica issuing a force
// value has a clock two hours behind the store's, which the replicas
// checking the value go by (router.Deps.StoreLead). A 30-minute value
// expires 30 minutes from now on that clock, not an hour and a half
// before it is issued.
func TestAForceValueIsStampedOnTheStoresClock(t *testing.T) {
	start := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	const behind = 2 * time.Hour
	p := newPlaneWith(t, planeOptions{clock: &clock{t: start.Add(-behind)}, storeLead: behind})
	secret := [32]byte{'k', 'e', 'y'}
	reconfigure(t, p, "force_token_key: "+hex.EncodeToString(secret[:]), forceRoutes)
	resp, body := p.call(t, "POST", "/admin/routes/get-patient/force-token", aliceToken, `{"backend":"modern","ttl":"30m"}`)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("got %d %v, want 201", resp.StatusCode, body)
	}
	claim, err := force.NewKey(secret).Verify(body["value"].(string), start)
	if want := start.Add(30 * time.Minute); err != nil || !claim.Expires.Equal(want) {
		t.Errorf("the value expires at %s (%v), want %s: 30 minutes on the store's clock", claim.Expires, err, want)
	}
	if body["ttl_seconds"] != 1800.0 {
		t.Errorf("ttl_seconds %v, want 1800", body["ttl_seconds"])
	}
}

// TestARepairsAgeIsOnTheStoresClock: the replica answering GET
// /admin/repairs has a clock three days behind the store's, which
// stamped the write when it came in a moment ago: the write is seconds
// old, not three days to come.
func TestARepairsAgeIsOnTheStoresClock(t *testing.T) {
	const behind = 72 * time.Hour
	// The embedded store stamps with the wall clock: the plane's is
	// behind it, and the store's lead measured.
	p := newPlaneWith(t, planeOptions{clock: &clock{t: time.Now().Add(-behind)}, storeLead: behind})
	p.journalWrite(t, "w-1")
	resp, body := p.call(t, "GET", "/admin/repairs", aliceToken, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got %d %v, want 200", resp.StatusCode, body)
	}
	repairs, _ := body["repairs"].([]any)
	if len(repairs) != 1 {
		t.Fatalf("got repairs %v, want w-1", body["repairs"])
	}
	// The plane's clock stands still while the test runs: within
	// minutes either way.
	if age := repairs[0].(map[string]any)["age_seconds"].(float64); age < -600 || age > 600 {
		t.Errorf("a write journaled a moment ago is listed %v seconds old, want a few", age)
	}
}
