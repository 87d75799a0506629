package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/control"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
	"strangler/store"
)

// bobToken is an operator's, the second pair of eyes beside alice's.
const bobToken = "bob-token-0123456789ab"

// bobEnv is the environment of an operator holding bob's token.
func bobEnv(admin string) map[string]string {
	return map[string]string{"STRANGLER_ADMIN": "http://" + admin, "STRANGLER_ADMIN_TOKEN": bobToken}
}

// writeRolloutsConfig writes a config with alice's and bob's tokens, a
// store (a SQLite file in its directory when empty), the state snapshot
// in its directory, and routes: get-visit
// to ramp, and two that need both of them to move forward.
func writeRolloutsConfig(t *testing.T, legacy, modern, dsn string) string {
	t.Helper()
	dir := t.TempDir()
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(dir, "strangler.db")
	}
	path := filepath.Join(dir, "strangler.yaml")
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
  tokens:
    - {name: alice, token: %q, role: admin}
    - {name: bob, token: %q, role: operator}
backends:
  legacy: { url: %q, timeout: 2s }
  modern: { url: %q, timeout: 2s }
debug_headers: true
shutdown: { delay: 0s, grace: 2s }
store: %q
state_snapshot: %q
routes:
  - {name: get-visit, match: "GET /visits/{id}", mode: fallback, percent: 0}
  - {name: get-patient, match: "GET /patients/{id}", mode: fallback, approvals: 2}
  - {name: list-photos, match: "GET /photos", mode: legacy, approvals: 2}
`, aliceToken, bobToken, legacy, modern, dsn, filepath.Join(dir, "state-snapshot.json"))
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// percentOf is the route's share to modern as the admin API says, -1
// for none set.
func percentOf(t *testing.T, admin, route string) float64 {
	t.Helper()
	var r control.RouteJSON
	adminGet(t, admin, "/admin/routes/"+route, &r)
	if r.Percent == nil {
		return -1
	}
	return *r.Percent
}

func TestARampFromTheCLI(t *testing.T) {
	legacy := backendAnswering(t, "legacy")
	modern := backendAnswering(t, "modern")
	clock := &adminClock{}
	f := startServeAt(t, writeRolloutsConfig(t, legacy.URL, modern.URL, ""), clock.Now)
	alice := cli(f.admin)

	t.Run("a ramp that cannot work is refused before the facade sees it", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"--steps", "1,x", "--every", "30m", "--reason", "r"}, `step 2, "x", is not a percent`},
			{[]string{"--steps", "1,5", "--every", "soon", "--reason", "r"}, `invalid duration "soon"`},
			{[]string{"--steps", "1,5", "--reason", "r"}, "a ramp needs --steps and --every"},
			{[]string{"--steps", "1,5", "--every", "30m"}, "--reason is required"},
			{[]string{"--pause", "--steps", "1", "--reason", "r"}, "--pause takes no --steps"},
			{[]string{"--pause", "--cancel", "--reason", "r"}, "give one of --pause, --resume and --cancel"},
		} {
			r := alice(t, append([]string{"routes", "ramp", "get-visit"}, tc.args...)...)
			if r.err == nil || !strings.Contains(r.err.Error()+r.stderr, tc.want) {
				t.Errorf("routes ramp get-visit %q: got %v %q, want an error saying %q", tc.args, r.err, r.stderr, tc.want)
			}
		}
		r := alice(t, "routes", "ramp", "get-visit", "--steps", "5,1", "--every", "30m", "--reason", "r")
		if r.err == nil || !strings.Contains(r.err.Error(), "the steps must rise: step 2, 1%, is not above step 1, 5%") {
			t.Errorf("falling steps: got %v, want the API's refusal", r.err)
		}
	})

	out := alice(t, "routes", "ramp", "get-visit", "--steps", "1,50,100", "--every", "30m", "--reason", "ticket 3").must(t)
	if want := "get-visit: ramp started to fallback at 1%, 50%, 100% every 30m; the first step is due now\n"; out != want {
		t.Errorf("got %q, want %q", out, want)
	}
	testkit.Eventually(t, 10*time.Second, "the first step", func() bool { return percentOf(t, f.admin, "get-visit") == 1 })
	show := alice(t, "routes", "ramp", "get-visit").must(t)
	for _, want := range []string{"get-visit: ramp to fallback at 1%, 50%, 100% every 30m", "running, 1 of 3 steps taken, next fallback at 50% in 29m", "route now:  fallback at 1% by ramp", "by alice: ticket 3"} {
		if !strings.Contains(show, want) {
			t.Errorf("routes ramp get-visit lacks %q:\n%s", want, show)
		}
	}
	if list := alice(t, "routes", "list").must(t); !strings.Contains(list, "get-visit ramps to fallback at 1%, 50%, 100% every 30m: running, 1 of 3 steps taken") {
		t.Errorf("routes list does not show the ramp:\n%s", list)
	}
	if out := alice(t, "routes", "ramp", "get-visit", "--pause", "--reason", "incident 5").must(t); !strings.HasPrefix(out, "get-visit: ramp paused, 1 of 3 steps taken") {
		t.Errorf("pause: got %q", out)
	}
	clock.Advance(time.Hour)
	if out := alice(t, "routes", "ramp", "get-visit", "--resume", "--reason", "incident over").must(t); !strings.HasPrefix(out, "get-visit: ramp running, 1 of 3 steps taken, next fallback at 50% in 29m") {
		t.Errorf("resume: got %q", out)
	}
	if got := percentOf(t, f.admin, "get-visit"); got != 1 {
		t.Errorf("paused for an hour, then resumed: at %v%%, want 1%%", got)
	}
	clock.Advance(30 * time.Minute)
	testkit.Eventually(t, 10*time.Second, "the second step, 30 minutes after the resume", func() bool { return percentOf(t, f.admin, "get-visit") == 50 })
	if out := alice(t, "routes", "ramp", "get-visit", "--cancel", "--reason", "enough for now").must(t); !strings.HasPrefix(out, "get-visit: ramp cancelled, 2 of 3 steps taken") {
		t.Errorf("cancel: got %q", out)
	}
	clock.Advance(time.Hour)
	time.Sleep(1500 * time.Millisecond) // a round of the driver, which must not step a cancelled ramp
	if got := percentOf(t, f.admin, "get-visit"); got != 50 {
		t.Errorf("after the cancel: at %v%%, want 50%%", got)
	}
	var audit struct {
		Entries []struct {
			ID            int64
			Actor, Action string
		} `json:"entries"`
	}
	adminGet(t, f.admin, "/admin/audit?route=get-visit", &audit)
	// In the order they were written: the flips' times come from the
	// real clock, the ramp's from the test's, which is hours ahead.
	slices.SortFunc(audit.Entries, func(a, b struct {
		ID            int64
		Actor, Action string
	}) int {
		return cmp.Compare(a.ID, b.ID)
	})
	var got []string
	for _, e := range audit.Entries {
		got = append(got, e.Actor+" "+e.Action)
	}
	want := []string{"alice ramp_start", "ramp flip", "alice ramp_pause", "alice ramp_resume", "ramp flip", "alice ramp_cancel"}
	if !slices.Equal(got, want) {
		t.Errorf("get-visit's audit log, oldest first: got %q, want %q", got, want)
	}
}

func TestFourEyesFromTheCLI(t *testing.T) {
	legacy := backendAnswering(t, "legacy")
	modern := backendAnswering(t, "modern")
	clock := &adminClock{}
	f := startServeAt(t, writeRolloutsConfig(t, legacy.URL, modern.URL, ""), clock.Now)
	alice, bob := cli(f.admin), cliEnv(bobEnv(f.admin))

	out := bob(t, "routes", "set", "get-patient", "--mode", "modern", "--reason", "backfill done").must(t)
	if !strings.HasPrefix(out, "get-patient needs 1 approval by another token name: change request 1 waits until ") || !strings.Contains(out, "(strangler routes approve 1)") {
		t.Errorf("a flip forward on a route with approvals: got %q, want it to say change request 1 waits", out)
	}
	var r control.RouteJSON
	adminGet(t, f.admin, "/admin/routes/get-patient", &r)
	if r.Mode != "fallback" || r.PendingChange == nil || r.PendingChange.ID != 1 {
		t.Fatalf("with the request pending get-patient is %s, pending %+v; want fallback with request 1", r.Mode, r.PendingChange)
	}
	list := alice(t, "routes", "changes").must(t)
	for _, want := range []string{"ID", "get-patient", "fallback → modern", "bob", "0 of 1", "pending", "backfill done"} {
		if !strings.Contains(list, want) {
			t.Errorf("routes changes lacks %q:\n%s", want, list)
		}
	}
	if r := bob(t, "routes", "approve", "1"); r.err == nil || r.err.Error() != "bob requested change request 1: another token name must approve it (four eyes)" {
		t.Errorf("bob approving his own: got %v, want it refused", r.err)
	}
	if out := alice(t, "routes", "approve", "1").must(t); out != "change request 1 approved and applied: get-patient: modern by bob\n" {
		t.Errorf("alice's approval: got %q", out)
	}
	if out := alice(t, "routes", "changes").must(t); out != "no change requests\n" {
		t.Errorf("after it: routes changes says %q", out)
	}
	if out := alice(t, "routes", "changes", "--all").must(t); !strings.Contains(out, "applied by alice") {
		t.Errorf("routes changes --all lacks the applied request:\n%s", out)
	}

	t.Run("a request nobody approves expires after 24 hours", func(t *testing.T) {
		bob(t, "routes", "set", "list-photos", "--mode", "shadow", "--reason", "compare photos").must(t)
		clock.Advance(24*time.Hour + time.Second)
		testkit.Eventually(t, 15*time.Second, "the expiry recorded", func() bool {
			return strings.Contains(alice(t, "routes", "changes", "--all").must(t), "expired")
		})
		if r := alice(t, "routes", "approve", "2"); r.err == nil || !strings.Contains(r.err.Error(), "change request 2 expired at") {
			t.Errorf("approving it: got %v, want it refused as expired", r.err)
		}
		var r control.RouteJSON
		adminGet(t, f.admin, "/admin/routes/list-photos", &r)
		if r.Mode != "legacy" {
			t.Errorf("after the expiry list-photos is %s, want legacy", r.Mode)
		}
	})
	t.Run("a rejected request is never applied", func(t *testing.T) {
		bob(t, "routes", "set", "list-photos", "--mode", "shadow", "--reason", "again").must(t)
		if r := alice(t, "routes", "reject", "3"); r.err == nil || !strings.Contains(r.err.Error(), "--reason is required") {
			t.Errorf("a rejection without a reason: got %v", r.err)
		}
		if out := alice(t, "routes", "reject", "3", "--reason", "not this week").must(t); out != "change request 3 (bob's legacy → shadow) rejected\n" {
			t.Errorf("got %q", out)
		}
		if r := alice(t, "routes", "approve", "x3"); r.err == nil || !strings.Contains(r.err.Error(), `"x3" is not a change request's id`) {
			t.Errorf("a made-up id: got %v", r.err)
		}
	})
}

// TestTwoReplicasShareOneRampDriver runs two facades on one PostgreSQL
// store and one clock: one drives the ramp; when it stops, the other
// takes the next step, and every step is taken once.
func TestTwoReplicasShareOneRampDriver(t *testing.T) {
	dsn := testdb.Postgres(t)
	legacy := backendAnswering(t, "legacy")
	modern := backendAnswering(t, "modern")
	clock := &adminClock{}
	replicas := make([]*stoppable, 2)
	var wg sync.WaitGroup
	for i := range replicas {
		path := writeRolloutsConfig(t, legacy.URL, modern.URL, dsn) // each its own snapshot
		wg.Go(func() { replicas[i] = startStoppable(t, path, clock.Now) })
	}
	wg.Wait()
	cli(replicas[0].admin)(t, "routes", "ramp", "get-visit", "--steps", "10,50,100", "--every", "30m", "--reason", "ticket 8").must(t)
	for _, r := range replicas {
		testkit.Eventually(t, 10*time.Second, "the first step, on both replicas", func() bool { return percentOf(t, r.admin, "get-visit") == 10 })
	}
	driver := -1
	for i, r := range replicas {
		if strings.Contains(r.logs.String(), `"msg":"this replica drives the scheduled ramps"`) {
			driver = i
		}
	}
	if driver < 0 {
		t.Fatal("no replica says it drives the ramps")
	}
	other := replicas[1-driver]
	replicas[driver].stop()
	clock.Advance(30 * time.Minute)
	took := testkit.Eventually(t, 15*time.Second, "the second step, by the other replica", func() bool { return percentOf(t, other.admin, "get-visit") == 50 })
	t.Logf("the other replica took the next step %v after the driver stopped", took.Round(time.Millisecond))
	other.logs.waitFor(t, "this replica drives the scheduled ramps", nil, time.Second)

	st, err := store.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	entries, err := st.AuditLog(context.Background(), store.AuditFilter{Route: "get-visit"})
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	for _, e := range entries {
		if e.Actor == "ramp" && e.Action == "flip" {
			steps++
		}
	}
	if steps != 2 {
		t.Errorf("the ramp's steps in the audit log: %d, want 2", steps)
	}
}

// stoppable is a facade run in this process that a test may stop.
type stoppable struct {
	admin string
	logs  *logBuffer
	stop  func()
}

// startStoppable runs the facade of the configuration at path, as
// startServeAt does, with a stop that waits until it has stopped.
func startStoppable(t *testing.T, path string, now func() time.Time) *stoppable {
	t.Helper()
	r := startServeAt(t, path, now)
	var once sync.Once
	return &stoppable{admin: r.admin, logs: r.logs, stop: func() {
		once.Do(func() {
			r.stop()
			if err := <-r.done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("the stopped replica: %v", err)
			}
			r.done <- nil // for startServeAt's cleanup
		})
	}}
}
