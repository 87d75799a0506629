package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// These tests run strangler as a real process: signals and memory use are
// properties of a process, not of a function call.

func TestSIGHUPReloads(t *testing.T) {
	legacy := backendAnswering(t, "legacy")
	modern := backendAnswering(t, "modern")
	path := writeConfig(t, "", legacy.URL, modern.URL, `  - {name: p, match: "GET /p", mode: legacy}`)
	p := startProcess(t, "serve", "--config", path)
	writeConfig(t, path, legacy.URL, modern.URL, `  - {name: p, match: "GET /p", mode: modern}`)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	p.logs.waitFor(t, "config reloaded", map[string]any{"cause": "SIGHUP"}, 15*time.Second)
	if _, body := getBody(t, "http://"+p.public+"/p"); body != "modern" {
		t.Errorf("after SIGHUP got %q, want the new config's backend", body)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("after SIGTERM the process exited with %v, want 0", err)
	}
}

// TestStreamingUsesConstantMemory moves 1 GiB each way through a legacy
// route and checks the facade's peak resident memory hardly moved.
func TestStreamingUsesConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 2 GiB through loopback")
	}
	const size = 1 << 30
	chunk := make([]byte, 256<<10)
	backend := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery == "warm" {
			io.WriteString(w, "warm")
			return
		}
		if r.Method == http.MethodPost {
			n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{r.Body}, make([]byte, 1<<20))
			if err != nil || n != size {
				http.Error(w, "short upload", http.StatusBadRequest)
				return
			}
			io.WriteString(w, strconv.FormatInt(n, 10))
			return
		}
		w.Header().Set("Content-Length", strconv.Itoa(size))
		for sent := 0; sent < size; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	path := writeConfig(t, "", backend.URL, backend.URL, `  - {name: files, match: "/files/*", mode: legacy}`)
	// The memory of the binary as it ships: the race detector's own
	// bookkeeping grows with what the process touches.
	p := startProcessesOf(t, productionBinary(t), []string{"serve", "--config", path})[0]
	url := "http://" + p.public + "/files/big"

	// Warm up pools and buffers so that the baseline includes them.
	if code, _ := getBody(t, url+"?warm"); code != 200 {
		t.Fatalf("warm-up got %d", code)
	}
	before := peakRSS(t, p.cmd.Process.Pid)

	// Large buffers keep the test's own syscalls from dominating its time.
	client := &http.Client{Transport: &http.Transport{WriteBufferSize: 1 << 20, ReadBufferSize: 1 << 20}}
	resp, err := client.Post(url, "application/octet-stream", io.LimitReader(zeros{}, size))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != strconv.Itoa(size) {
		t.Fatalf("upload: got %d %q", resp.StatusCode, body)
	}
	resp, err = client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{resp.Body}, make([]byte, 1<<20))
	resp.Body.Close()
	if err != nil || n != size {
		t.Fatalf("download: got %d bytes, %v", n, err)
	}

	after := peakRSS(t, p.cmd.Process.Pid)
	t.Logf("peak RSS %d MiB before, %d MiB after moving 2 GiB", before>>20, after>>20)
	if after-before > 8<<20 {
		t.Errorf("peak RSS grew by %d MiB while streaming, want at most 8 MiB", (after-before)>>20)
	}
}

// TestMemoryProfilingStaysOff checks that nothing linked into the binary
// as it ships can read the Go runtime's memory profiles, so that the
// runtime leaves memory profiling off: strangler serves no profiles, and
// the sampling's table of allocation stacks costs about 1.5 MiB of
// resident memory under load. The linker switches profiling off when
// runtime.memProfileInternal is unreachable (runtime/mprof.go); a
// dependency importing net/http/pprof makes it reachable.
func TestMemoryProfilingStaysOff(t *testing.T) {
	out, err := exec.Command("go", "tool", "nm", productionBinary(t)).Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), " runtime.memProfileInternal\n") {
		t.Error("the binary can read memory profiles, so the runtime samples allocations for them: " +
			"does a dependency import net/http/pprof? (go list -deps ./cmd/strangler)")
	}
}

// zeros is an endless body. It leaves p as it is: the bytes' values do not
// matter, and writing them would cost the race detector seconds per GiB.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) { return len(p), nil }

// peakRSS reads a process's peak resident set size (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	status, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		t.Skipf("no /proc to read memory use from: %v", err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
