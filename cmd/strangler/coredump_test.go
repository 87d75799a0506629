package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A facade that crashes under GOTRACEBACK=crash, with core dumps allowed
// by its limits, leaves no core file: its memory holds the requests it
// relayed. Before, a SIGABRT after one shadowed write left a 130 MB core
// in its working directory holding the patient's record 34 times.
func TestACrashLeavesNoCoreFileWithTheRequestsInIt(t *testing.T) {
	pattern, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	if err != nil {
		t.Skipf("no core pattern to read: %v", err)
	}
	if p := strings.TrimSpace(string(pattern)); strings.HasPrefix(p, "|") || strings.HasPrefix(p, "/") {
		t.Skipf("the kernel writes cores through %q, out of this test's sight", p)
	}
	var limit syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_CORE, &limit); err != nil || limit.Max == 0 {
		t.Skipf("core dumps are off for this user (hard limit 0, %v)", err)
	}
	echo := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.Copy(w, r.Body)
	}
	legacy, modern := httptestServer(t, echo), httptestServer(t, echo)
	dir := t.TempDir()
	cfg := writeConfig(t, filepath.Join(dir, "strangler.yaml"), legacy.URL, modern.URL,
		`  - {name: shadow-write, match: "POST /patients/{id}", mode: shadow, shadow_writes: true}`)
	// The shell lifts the soft limit to the hard one for the facade alone.
	cmd := exec.Command("sh", "-c", `ulimit -c "$(ulimit -H -c)" && exec "$0" "$@"`, productionBinary(t), "serve", "--config", cfg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOTRACEBACK=crash")
	logs := newLogBuffer()
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	public := logs.waitFor(t, "serving", nil, startWait)["listen"].(string)

	resp, err := http.Post("http://"+public+"/patients/"+canaryMRN+canaryQuery, "application/json", strings.NewReader(canaryBody))
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(answer), canaryMRN) {
		t.Fatalf("the write was not relayed: %d %s", resp.StatusCode, answer)
	}
	cmd.Process.Signal(syscall.SIGABRT)
	select {
	case <-exited:
	case <-time.After(time.Minute):
		t.Fatal("the facade did not exit within a minute of SIGABRT")
	}
	if !strings.Contains(logs.String(), "goroutine ") {
		t.Errorf("the crash printed no stacks:\n%s", logs)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if found := findCanaries(string(b)); len(found) > 0 {
			t.Errorf("the file %s (%d bytes) the crash left holds %v", e.Name(), len(b), found)
		}
	}
}
