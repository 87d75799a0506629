package deploy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// repoRoot is the repository as seen from this package's folder.
const repoRoot = ".."

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/strangler once, as the image does, for the tests that
// run the facade or its healthcheck.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "strangler-deploy")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "strangler")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/strangler")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// facade is strangler serving as a child process.
type facade struct {
	cmd           *exec.Cmd
	public, admin string // host:port
}

// startFacade runs `strangler serve` with config and the environment env,
// and waits until /readyz answers 200.
func startFacade(t *testing.T, config string, env ...string) *facade {
	t.Helper()
	cmd := exec.Command(binary(t), "serve", "--config", config)
	cmd.Env = append(os.Environ(), env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	f := &facade{cmd: cmd}
	serving := make(chan struct{})
	go func() {
		// Read every line, so the facade never blocks on a full pipe.
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct{ Msg, Listen, Admin string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" && f.admin == "" {
				f.public, f.admin = line.Listen, line.Admin
				close(serving)
			}
		}
	}()
	select {
	case <-serving:
	case <-time.After(30 * time.Second):
		t.Fatal("the facade did not log serving within 30s")
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		if code, _ := get(t, "http://"+f.admin+"/readyz"); code == http.StatusOK {
			return f
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz never answered 200")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// writeConfig writes a configuration with legacy and modern as the
// backends and routes (YAML list items), listening on loopback ports the
// system picks, and returns its path.
func writeConfig(t *testing.T, legacy, modern, routes string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "strangler.yaml")
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
admin: { listen: "127.0.0.1:0" }
backends:
  legacy: { url: %q, timeout: 2s }
  modern: { url: %q, timeout: 2s }
shutdown: { delay: 100ms, grace: 2s }
store: "sqlite:%s"
routes:
%s`, legacy, modern, filepath.Join(dir, "strangler.db"), routes)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func backend(t *testing.T, h http.HandlerFunc) *httptest.Server {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// get returns the status and body of a GET, or 0 and the error when
// nothing answered.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// portOf is the port of a host:port address.
func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return n
}
