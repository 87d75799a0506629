package store

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"strangler/domain"
)

func TestReopenKeepsEverything(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		dsn := b.fresh(t)
		clk := newClock()
		s := openStore(t, dsn, clk)
		journal(t, s, "pending", "update-patient/1")
		journal(t, s, "dead", "update-patient/2")
		if got := claimIDs(t, s, "w"); len(got) != 2 {
			t.Fatalf("claimed %v, want both", got)
		}
		if err := s.FailRepair(ctx, "dead", "w", "410", 0, true); err != nil {
			t.Fatal(err)
		}
		if err := s.BeginWrite(ctx, intent("sent", "update-patient/3"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetOverride(ctx, domain.Override{Route: "get", Mode: "modern"}, 0, flip("get", "legacy", "modern")); err != nil {
			t.Fatal(err)
		}
		if err := s.AddCounts(ctx, []domain.HourCount{{Route: "get", Hour: t0, Requests: 3, Fallbacks: 1, LastFallbackAt: t0}}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddLegacyClients(ctx, []domain.ClientCount{{Route: "get", Hour: t0, Client: "ios/1", Requests: 3}}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddSample(ctx, "get", t0, []byte(`{"a":1}`), 5); err != nil {
			t.Fatal(err)
		}
		if err := s.AddNoise(ctx, "get", "$.etag"); err != nil {
			t.Fatal(err)
		}
		if err := s.AddRepairKey(ctx, "patients", "42"); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		s = openStore(t, dsn, clk)
		for id, want := range map[string]domain.State{"pending": domain.StatePending, "dead": domain.StateDead, "sent": domain.StateSent} {
			if got := state(t, s, id); got != want {
				t.Errorf("%s: got %s, want %s", id, got, want)
			}
		}
		// The lease taken before the restart still holds.
		if got := claimIDs(t, s, "w2"); len(got) != 0 {
			t.Errorf("claimed %v under a live lease, want nothing", got)
		}
		if o := mustOverrides(t, s)["get"]; o.Mode != "modern" || o.Version != 1 {
			t.Errorf("override: got %+v, want modern at version 1", o)
		}
		if n := auditCount(t, s); n != 1 {
			t.Errorf("got %d audit entries, want 1", n)
		}
		if c, err := s.Counts(ctx, "get", t0); err != nil || c.Requests != 3 || !c.LastFallbackAt.Equal(t0) {
			t.Errorf("counts: got %+v, %v; want 3 requests, last fallback %v", c, err, t0)
		}
		if c, err := s.TopLegacyClients(ctx, "get", t0, 1); err != nil || len(c) != 1 {
			t.Errorf("clients: got %+v, %v; want ios/1", c, err)
		}
		if sm, err := s.Samples(ctx, "get", 1); err != nil || len(sm) != 1 {
			t.Errorf("samples: got %d, %v; want 1", len(sm), err)
		}
		if n, err := s.Noise(ctx, "get"); err != nil || len(n) != 1 {
			t.Errorf("noise: got %v, %v; want $.etag", n, err)
		}
		if k, err := s.PendingRepairKeys(ctx, "patients", 1); err != nil || !reflect.DeepEqual(k, []string{"42"}) {
			t.Errorf("repair keys: got %v, %v; want [42]", k, err)
		}
	})
}

// crashEnv names the store a crash helper process journals into.
const crashEnv = "STRANGLER_STORE_CRASH_DSN"

// TestJournalSurvivesSIGKILL journals writes in a child process, kills it
// with SIGKILL at an arbitrary moment, and checks that every write the
// child saw committed is still there, in order, and that at most the one
// in flight is left sent.
func TestJournalSurvivesSIGKILL(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("in the helper process")
	}
	forEachBackend(t, func(t *testing.T, b backend) {
		dsn := b.fresh(t)
		openStore(t, dsn, nil).Close() // migrate before the child starts
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dsn)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = testWriter{t}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var committed []string
		lines := bufio.NewScanner(out)
		killed := false
		for lines.Scan() {
			id, ok := strings.CutPrefix(lines.Text(), "journaled ")
			if !ok {
				continue
			}
			committed = append(committed, id)
			if len(committed) == 25 && !killed {
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		cmd.Wait()
		if !killed {
			t.Fatalf("the helper stopped after %d writes before it was killed", len(committed))
		}

		s := openStore(t, dsn, nil)
		var last int64
		for _, id := range committed {
			r, err := s.GetRepair(context.Background(), id, false)
			if err != nil {
				t.Fatalf("%s, committed before the kill: %v", id, err)
			}
			if r.State != domain.StatePending || r.Seq <= last {
				t.Errorf("%s: got %s seq %d, want pending after seq %d", id, r.State, r.Seq, last)
			}
			last = r.Seq
		}
		depth, err := s.RepairDepth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if depth["sent"] > 1 || depth["pending"] < len(committed) || depth["pending"] > len(committed)+1 {
			t.Errorf("got %v after %d committed writes, want them pending and at most one more in flight",
				depth, len(committed))
		}
	})
}

// TestCrashHelper is the child process of TestJournalSurvivesSIGKILL: it
// journals writes to one resource as fast as it can and reports each once
// it is committed, until it is killed.
func TestCrashHelper(t *testing.T) {
	dsn := os.Getenv(crashEnv)
	if dsn == "" {
		t.Skip("run by TestJournalSurvivesSIGKILL")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Open(ctx, dsn, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ctx.Err() == nil; i++ {
		id := fmt.Sprintf("crash-%06d", i)
		if err := s.BeginWrite(ctx, intent(id, "update-patient/1"), time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.RecordOutcome(ctx, id, domain.Outcome{Status: 200}); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("journaled %s\n", id)
	}
}
