package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strangler/internal/testdb"
	"strangler/modern"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// logBuffer collects a process's log output and lets a test wait for a
// line.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newLogBuffer() *logBuffer { return &logBuffer{changed: make(chan struct{}, 1)} }

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case b.changed <- struct{}{}:
	default:
	}
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor returns the first JSON log line whose msg is msg and which has
// every field of want, waiting up to timeout for it.
func (b *logBuffer) waitFor(t *testing.T, msg string, want map[string]any, timeout time.Duration) map[string]any {
	t.Helper()
	deadline := time.After(timeout)
	for {
		for _, raw := range strings.Split(b.String(), "\n") {
			var line map[string]any
			if json.Unmarshal([]byte(raw), &line) != nil || line["msg"] != msg {
				continue
			}
			match := true
			for k, v := range want {
				if line[k] != v {
					match = false
				}
			}
			if match {
				return line
			}
		}
		select {
		case <-b.changed:
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatalf("no log line %q with %v after %v; log:\n%s", msg, want, timeout, b)
		}
	}
}

// running is a facade started by run in this test process.
type running struct {
	public, admin string // host:port
	logs          *logBuffer
	stop          context.CancelFunc
	done          chan error
}

// startRun calls run with args and waits until the facade serves.
func startRun(t *testing.T, args ...string) *running {
	t.Helper()
	return startRunEnv(t, noEnv, args...)
}

// startRunEnv is startRun with an environment for the configuration's
// placeholders.
func startRunEnv(t *testing.T, getenv func(string) string, args ...string) *running {
	t.Helper()
	r := launchEnv(t, getenv, args...)
	waitReady(t, r.admin)
	return r
}

// launchEnv starts run with args and an environment for the
// configuration's placeholders, and returns once the facade listens,
// ready or not. The run is stopped when the test ends.
func launchEnv(t *testing.T, getenv func(string) string, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{logs: newLogBuffer(), stop: cancel, done: make(chan error, 1)}
	go func() {
		err := run(ctx, args, getenv, io.Discard, r.logs)
		if err != nil {
			fmt.Fprintf(r.logs, "{\"msg\":\"run returned\",\"error\":%q}\n", err)
		}
		r.done <- err
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	line := r.logs.waitFor(t, "serving", nil, startWait)
	r.public, r.admin = line["listen"].(string), line["admin"].(string)
	return r
}

func noEnv(string) string { return "" }

// startWait is how long a test waits for a facade it started to say
// "serving". Generous: opening and migrating a fresh store in a
// race-detector build took more than 10 s at load 30, and a quick start
// costs nothing extra.
const startWait = 60 * time.Second

func waitReady(t *testing.T, admin string) {
	t.Helper()
	deadline := time.Now().Add(startWait)
	for {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never became ready: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeConfig writes a config whose backends are legacy and modern and
// returns its path.
func writeConfig(t *testing.T, path, legacy, modern, routes string) string {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "strangler.yaml")
	}
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
admin: { listen: "127.0.0.1:0" }
backends:
  legacy: { url: %q, timeout: 2s }
  modern: { url: %q, timeout: 2s }
debug_headers: true
shutdown: { delay: 200ms, grace: 5s }
store: "sqlite:%s"
routes:
%s`, legacy, modern, filepath.Join(filepath.Dir(path), "strangler.db"), routes)
	// Write then rename, as a config management tool would, so a reload
	// never reads a half-written file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func backendAnswering(t *testing.T, body string) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func getBody(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metricValue scrapes the admin listener for one sample's value.
func metricValue(t *testing.T, admin, sample string) string {
	t.Helper()
	_, body := getBody(t, "http://"+admin+"/metrics")
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			return v
		}
	}
	return ""
}

// process is strangler running as a child process.
type process struct {
	cmd           *exec.Cmd
	logs          *logBuffer
	public, admin string
}

// startProcess starts strangler with args and waits until it serves.
func startProcess(t *testing.T, args ...string) *process {
	t.Helper()
	return startProcessesOf(t, binary(t), args)[0]
}

// startProcesses starts one strangler process per argument list, all at
// once, and waits until each serves.
func startProcesses(t *testing.T, argLists ...[]string) []*process {
	t.Helper()
	return startProcessesOf(t, binary(t), argLists...)
}

// startProcessesOf is startProcesses with the binary bin.
func startProcessesOf(t *testing.T, bin string, argLists ...[]string) []*process {
	t.Helper()
	ps := make([]*process, len(argLists))
	for i, args := range argLists {
		p := &process{logs: newLogBuffer()}
		p.cmd = exec.Command(bin, args...)
		p.cmd.Stderr = p.logs
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			p.cmd.Process.Kill()
			p.cmd.Wait()
			failOnDataRace(t, "strangler "+strings.Join(args, " "), p.logs.String())
		})
		ps[i] = p
	}
	for _, p := range ps {
		line := p.logs.waitFor(t, "serving", nil, 30*time.Second)
		p.public, p.admin = line["listen"].(string), line["admin"].(string)
		waitReady(t, p.admin)
	}
	return ps
}

// rawExchange writes raw bytes to addr and returns what comes back until
// the server closes or goes quiet.
func rawExchange(t *testing.T, addr, raw string) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	conn.Write([]byte(raw))
	out, _ := io.ReadAll(conn)
	return string(out)
}

func httptestServer(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// importsAPI starts the reference modern API's import endpoint on a fresh
// PostgreSQL database, with faults; both end with the test.
func importsAPI(t *testing.T, faults modern.Faults) (*pgxpool.Pool, *httptest.Server) {
	t.Helper()
	pool, err := modern.Open(context.Background(), testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	api := httptest.NewServer(modern.NewImports(pool, faults, slog.New(slog.DiscardHandler)).Handler())
	t.Cleanup(api.Close)
	return pool, api
}
