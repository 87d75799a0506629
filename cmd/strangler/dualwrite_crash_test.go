package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"strangler/internal/testdb"
	"strangler/internal/testkit"
)

// These tests run the dual-write path end to end: real facade processes
// (the binary, or run in this process), a real state store (SQLite, and
// PostgreSQL where the property depends on it), and backends that are real
// HTTP servers storing what they receive.

// e2eAdminToken is the bearer token the test configurations give the admin
// API (named "test" in the audit log).
// TestDualWriteFacadeKilled: the facade is killed (SIGKILL) at random
// moments during 2,000 writes and restarted on the same store each time,
// while the secondary flaps. Once the queue has settled and an operator
// has settled the writes whose primary outcome a kill lost, no write the
// client saw succeed is missing on the secondary, none is applied twice on
// either side, and both sides hold the same entries; on SQLite and on
// PostgreSQL.
//
// Two routes append entries: accounts, whose primary does not honour
// Idempotency-Key (a lost outcome becomes unknown, for the operator), and
// ledgers, whose primary does (primary_idempotent: recovery resends it
// with the key the primary first saw).
func TestDualWriteFacadeKilled(t *testing.T) {
	// Both mostly wait for leases to pass: they wait together, and with
	// the other waiting tests.
	t.Parallel()
	t.Run("on SQLite", func(t *testing.T) {
		t.Parallel()
		testFacadeKilled(t, "sqlite:"+filepath.Join(t.TempDir(), "strangler.db"))
	})
	t.Run("on PostgreSQL", func(t *testing.T) {
		t.Parallel()
		testFacadeKilled(t, testdb.Postgres(t))
	})
}

func testFacadeKilled(t *testing.T, dsn string) {
	const writes, kills, lists = 2000, 6, 20
	legacy := newRecordingBackend(t, "legacy", true, false)
	modern := newRecordingBackend(t, "modern", true, true)
	dir := t.TempDir()
	config := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: dsn, routes: `
  - {name: append-entry, match: "POST /accounts/{id}/entries", mode: dual-write}
  - {name: append-ledger, match: "POST /ledgers/{id}/entries", mode: dual-write, primary_idempotent: true}
`})
	p := startProcess(t, "serve", "--config", config)
	st := openStateStore(t, dsn)
	t.Cleanup(func() {
		if t.Failed() {
			logOpenWrites(t, st)
			t.Logf("the last facade's log:\n%s", p.logs)
		}
	})
	var public atomic.Pointer[string]
	public.Store(&p.public)

	// The client: a write that could not connect never left, so it is
	// sent again; any other error leaves its outcome unknown to the client.
	var (
		mu                  sync.Mutex
		succeeded           = map[string]bool{}
		clientUnknown, sent atomic.Int64
	)
	stopFlapping := modern.flap()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runParallel(writes, 8, func(i int) {
			path := fmt.Sprintf("/accounts/%d/entries", i%lists)
			if i%2 == 1 {
				path = fmt.Sprintf("/ledgers/%d/entries", i%lists)
			}
			body := fmt.Sprintf(`{"w":%d}`, i)
			for {
				code, _, err := sendRequest("POST", "http://"+*public.Load()+path, body, nil)
				var op *net.OpError
				if errors.As(err, &op) && op.Op == "dial" {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				sent.Add(1)
				switch {
				case err != nil:
					clientUnknown.Add(1)
				case code == http.StatusCreated:
					mu.Lock()
					succeeded[body] = true
					mu.Unlock()
				default:
					t.Errorf("write %d: got %d, want 201 (or a broken connection when killed)", i, code)
				}
				return
			}
		})
	}()

	// The killer: at random points of the run, SIGKILL, then a new
	// process on the same store.
	at := make([]int, kills)
	for k := range at {
		at[k] = 100 + rand.IntN(writes-300)
	}
	slices.Sort(at)
	var lastKill time.Time
	for k, n := range at {
		for sent.Load() < int64(n) {
			time.Sleep(5 * time.Millisecond)
		}
		if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		p.cmd.Wait()
		p = startProcess(t, "serve", "--config", config)
		public.Store(&p.public)
		lastKill = time.Now()
		t.Logf("kill %d after %d writes; restarted", k+1, n)
	}
	<-done
	stopFlapping()
	t.Logf("%d writes: %d succeeded for the client, %d unknown to it", writes, len(succeeded), clientUnknown.Load())

	// Writes a killed process had sent to the primary become unknown or
	// are resent once their lease passes, and deliveries it had in flight
	// are taken over once theirs does: 45 s with 5 s backend timeouts,
	// then the next recovery pass; the budget leaves room for a loaded
	// machine.
	took := testkit.Eventually(t, 3*time.Minute, "no write sent or pending", func() bool {
		d := queueDepth(t, st)
		return d["sent"]+d["pending"] == 0
	})
	t.Logf("the queue settled %v after the run, %v after the last kill", took.Round(100*time.Millisecond), time.Since(lastKill).Round(100*time.Millisecond))

	// The operator settles each unknown write: retried if the primary has
	// it, discarded if not.
	code, body := adminDo(t, p.admin, "GET", "/admin/repairs?state=unknown&limit=1000", nil)
	var unknown struct {
		Repairs []struct {
			ID string `json:"id"`
		} `json:"repairs"`
	}
	if err := json.Unmarshal(body, &unknown); err != nil || code != http.StatusOK {
		t.Fatalf("GET /admin/repairs?state=unknown: %d %s", code, body)
	}
	_, primaryEntries := legacy.snapshot()
	onPrimary := map[string]bool{}
	for _, list := range primaryEntries {
		for _, e := range list {
			onPrimary[e] = true
		}
	}
	var retried, discarded int
	for _, r := range unknown.Repairs {
		code, body := adminDo(t, p.admin, "GET", "/admin/repairs/"+r.ID+"?body=1", nil)
		var rep struct {
			Body string `json:"body"`
		}
		if err := json.Unmarshal(body, &rep); err != nil || code != http.StatusOK {
			t.Fatalf("GET /admin/repairs/%s?body=1: %d %s", r.ID, code, body)
		}
		reason := map[string]string{"reason": "checked the primary"}
		if onPrimary[rep.Body] {
			code, body = adminDo(t, p.admin, "POST", "/admin/repairs/"+r.ID+"/retry", reason)
			retried++
		} else {
			code, body = adminDo(t, p.admin, "DELETE", "/admin/repairs/"+r.ID, reason)
			discarded++
		}
		if code != http.StatusOK {
			t.Fatalf("settling %s: %d %s", r.ID, code, body)
		}
	}
	t.Logf("the operator settled %d unknown writes: %d retried (on the primary), %d discarded (not on it)", len(unknown.Repairs), retried, discarded)
	waitDrained(t, st, 30*time.Second)

	_, secondaryEntries := modern.snapshot()
	onSecondary := map[string]int{}
	for _, list := range secondaryEntries {
		for _, e := range list {
			onSecondary[e]++
		}
	}
	for w := range succeeded {
		if onSecondary[w] == 0 {
			t.Errorf("write %s: the client saw it succeed, but it is missing on the secondary", w)
		}
	}
	for w, n := range onSecondary {
		if n > 1 {
			t.Errorf("write %s: applied %d times on the secondary, want once", w, n)
		}
	}
	seen := map[string]bool{}
	for _, list := range primaryEntries {
		for _, e := range list {
			if seen[e] {
				t.Errorf("write %s: applied twice on the primary", e)
			}
			seen[e] = true
		}
	}
	sameRecords(t, legacy, modern)
	received, applied := modern.counts()
	var again int
	for key, n := range received {
		again += n - applied[key]
	}
	t.Logf("the secondary got %d deliveries again under a key it had applied, and applied none of them twice", again)
}

// TestDualWriteThreeReplicasDrainOneQueue: three facade processes sharing
// one PostgreSQL store drain a queue of 3,000 writes, built while the
// secondary was down, each applying a fair share and none applying a
// write another did. The secondary here does not honour Idempotency-Key,
// so every request it gets is an application: a write claimed by two
// replicas would show as a key applied twice.
//
// 3,000 writes, not more: the replicas contend for the queue over some
// thirty claims each way, which is what is under test; a longer queue
// only made the test slower (two minutes with race-detector builds).
func TestDualWriteThreeReplicasDrainOneQueue(t *testing.T) {
	const writes = 3000
	// Commits need not wait for the WAL to reach the disk here: what is
	// under test is that replicas never claim one write together, not
	// PostgreSQL's durability.
	dsn := testdb.Postgres(t) + "&synchronous_commit=off"
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", false, false)
	dir := t.TempDir()
	// The facade that builds the queue tries to deliver as little as it
	// can (one worker): each try fails and costs commits. The replicas
	// that drain it claim up to 100 at a time. A delivery that times out
	// is sent again, which this secondary would apply twice: the timeout
	// is far above what a loaded machine takes, so that only a double
	// claim can show as a write applied twice.
	builderConfig := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: dsn, workers: 1, timeout: time.Minute})
	config := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL(), store: dsn, workers: 100, timeout: time.Minute})
	st := openStateStore(t, dsn)

	// The queue: items written while the secondary is down.
	modern.stop()
	builder := startProcess(t, "serve", "--config", builderConfig)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the builder's log:\n%s", builder.logs)
		}
	})
	start := time.Now()
	var failed atomic.Int64
	runParallel(writes, 16, func(i int) {
		code, _, err := sendRequest("PUT", fmt.Sprintf("http://%s/items/%d", builder.public, i), fmt.Sprintf(`{"v":%d}`, i), nil)
		if err != nil || code != http.StatusOK {
			if failed.Add(1) <= 3 {
				t.Errorf("write %d: got %d %v, want 200", i, code, err)
			}
		}
	})
	if err := builder.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	builder.cmd.Wait()
	if d := queueDepth(t, st); d["pending"] != writes || failed.Load() > 0 {
		t.Fatalf("after %d writes (%d failed): %v, want %d pending", writes, failed.Load(), d, writes)
	}
	t.Logf("%d writes queued in %v", writes, time.Since(start).Round(time.Millisecond))

	// The secondary is back but holds every write until the three
	// replicas are ready, so that they start draining together: a replica
	// that started first cannot take the whole queue.
	gate := make(chan struct{})
	var openGate sync.Once
	t.Cleanup(func() { openGate.Do(func() { close(gate) }) })
	modern.mu.Lock()
	modern.hold = func(*http.Request) { <-gate }
	modern.mu.Unlock()
	modern.start()
	args := []string{"serve", "--config", config}
	replicas := startProcesses(t, args, args, args)
	openGate.Do(func() { close(gate) })
	took := waitDrained(t, st, 5*time.Minute)
	t.Logf("three replicas drained %d writes in %v", writes, took.Round(time.Millisecond))

	total := 0
	var shares []string
	for i, p := range replicas {
		v := metricValue(t, p.admin, `strangler_dualwrite_total{result="applied",route="put-item"}`)
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("replica %d: applied %q", i+1, v)
		}
		total += n
		shares = append(shares, fmt.Sprintf("replica %d: %d", i+1, n))
		if n < writes/10 {
			t.Errorf("replica %d applied %d of %d writes, want a fair share (at least a tenth)", i+1, n, writes)
		}
	}
	t.Logf("applied per replica: %s", strings.Join(shares, ", "))
	if total != writes {
		t.Errorf("the replicas counted %d writes applied, want %d: each once", total, writes)
	}

	_, applied := modern.counts()
	if len(applied) != writes {
		t.Errorf("the secondary applied %d distinct Idempotency-Keys, want %d", len(applied), writes)
	}
	var twice int
	for key, n := range applied {
		if n != 1 {
			if twice++; twice <= 10 {
				t.Errorf("Idempotency-Key %s: applied %d times by the secondary, want once", key, n)
			}
		}
	}
	if twice > 0 {
		t.Errorf("%d of %d writes applied more than once by the secondary, want none", twice, len(applied))
	}
	sameRecords(t, legacy, modern)
}
