package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// storeCLI runs `strangler store …` and returns what it printed.
func storeCLI(args ...string) (stdout, stderr string, err error) {
	var out, errOut bytes.Buffer
	err = run(context.Background(), append([]string{"store"}, args...), noEnv, &out, &errOut)
	return out.String(), errOut.String(), err
}

// TestBackupVerifyRestore backs the embedded store up while the facade
// serves dual writes, verifies the backup, and restores it into a fresh
// facade: the same flags, audit log and pending writes, which then drain
// to the secondary.
func TestBackupVerifyRestore(t *testing.T) {
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", true, true)
	modern.stop() // the secondary is down: the writes stay pending
	routes := dualWriteRoutes + `
  - {name: flag, match: "GET /flag", mode: legacy}
`
	dir := t.TempDir()
	cfg := writeFacadeConfig(t, dir, facadeConfig{legacy: legacy.URL(), modern: modern.URL(), routes: routes})
	f := startRun(t, "serve", "--config", cfg)
	flipRoute(t, f.admin, "flag", "modern", "before the backup")
	const pending = 20
	for i := range pending {
		if code, _, err := sendRequest("PUT", fmt.Sprintf("http://%s/items/b%d", f.public, i), fmt.Sprintf(`{"i":%d}`, i), nil); err != nil || code != http.StatusOK {
			t.Fatalf("write %d: got %d %v", i, code, err)
		}
	}
	var auditBefore json.RawMessage
	adminGetJSON(t, f.admin, "/admin/audit", &auditBefore)

	// The facade keeps taking reads and writes to other items while the
	// backup runs; the backup holds one consistent moment of them.
	stop := make(chan struct{})
	var busy sync.WaitGroup
	var during atomic.Int32
	busy.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if code, _, _ := sendRequest("PUT", fmt.Sprintf("http://%s/items/during-%d", f.public, i), `{}`, nil); code == http.StatusOK {
				during.Add(1)
			}
		}
	})
	for during.Load() < 5 {
		time.Sleep(time.Millisecond)
	}
	backup := filepath.Join(t.TempDir(), "strangler-backup.db")
	out, stderr, err := storeCLI("backup", "--config", cfg, backup)
	close(stop)
	busy.Wait()
	if err != nil {
		t.Fatalf("store backup: %v\n%s%s", err, out, stderr)
	}
	if !strings.Contains(out, "backed up sqlite:") || !strings.Contains(out, "integrity:") {
		t.Errorf("store backup printed:\n%s\nwant what it copied and the check of the copy", out)
	}

	out, _, err = storeCLI("verify", backup)
	if err != nil {
		t.Fatalf("store verify: %v", err)
	}
	words := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{backup + ": ok", "integrity: ok", "overrides: 1", "audit entries: 1"} {
		if !strings.Contains(words, want) {
			t.Errorf("store verify printed:\n%s\nwant %q", out, want)
		}
	}
	var atBackup int
	if _, err := fmt.Sscanf(words[strings.Index(words, "open dual writes:"):], "open dual writes: %d pending", &atBackup); err != nil || atBackup < pending+5 {
		t.Errorf("store verify: pending writes %d (%v), want at least %d: the %d writes before and those during the backup", atBackup, err, pending+5, pending)
	}

	t.Run("a damaged backup fails verify", func(t *testing.T) {
		b, err := os.ReadFile(backup)
		if err != nil {
			t.Fatal(err)
		}
		damaged := filepath.Join(t.TempDir(), "damaged.db")
		if err := os.WriteFile(damaged, b[:len(b)*2/3], 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := storeCLI("verify", damaged); err == nil || !strings.Contains(err.Error(), "damaged") {
			t.Errorf("store verify of a truncated backup: got %v, want an error saying it is damaged", err)
		}
	})

	// Restore: the backup becomes the store of a fresh facade, next to a
	// secondary that is up again.
	stopRun(t, f)
	restored := t.TempDir()
	b, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(restored, "strangler.db"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	modern.start()
	g := startRun(t, "serve", "--config", writeFacadeConfig(t, restored, facadeConfig{legacy: legacy.URL(), modern: modern.URL(), routes: routes}))
	var rt struct {
		Mode     string `json:"mode"`
		Override *struct {
			Reason string `json:"reason"`
		} `json:"override"`
	}
	adminGetJSON(t, g.admin, "/admin/routes/flag", &rt)
	if rt.Mode != "modern" || rt.Override == nil || rt.Override.Reason != "before the backup" {
		t.Errorf("the restored flag: got %+v, want modern, flipped before the backup", rt)
	}
	var auditAfter json.RawMessage
	adminGetJSON(t, g.admin, "/admin/audit", &auditAfter)
	if !bytes.Equal(auditBefore, auditAfter) {
		t.Errorf("the restored audit log:\n%s\nwant as before the backup:\n%s", auditAfter, auditBefore)
	}
	// The writes pending in the backup drain now, none waiting for a
	// lease taken before it. (One the backup caught at the primary is
	// sent: its outcome is not in the copy, and it becomes unknown.)
	st := openStateStore(t, "sqlite:"+filepath.Join(restored, "strangler.db"))
	testkit.Eventually(t, 20*time.Second, "the restored queue drains", func() bool {
		d := queueDepth(t, st)
		return d["pending"]+d["dead"] == 0
	})
	onModern, _ := modern.snapshot()
	for i := range pending {
		if got, want := onModern[fmt.Sprintf("b%d", i)], fmt.Sprintf(`{"i":%d}`, i); got != want {
			t.Errorf("write b%d on the secondary after the restore: got %q, want %q", i, got, want)
		}
	}
}
