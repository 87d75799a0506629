package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// target is one thing the load generator drives, with what it measured.
type target struct {
	key, name string
	addr      string // where the load goes
	admin     string // strangler's admin listener, "" for other targets
	request   []byte
	proc      *child
	startup   time.Duration // from exec to ready

	rates      []float64 // requests/s of each round
	hist       histogram
	requests   uint64
	non2xx     uint64
	ioErrors   uint64
	lastStatus int
	firstErr   error
	// CPU time used during the measured rounds, and their total length.
	cpu, cpuBackend, cpuLoad time.Duration
	cpuErr                   error
	elapsed                  time.Duration
	mem                      memory // after the last round
	memErr                   error
	// Resident memory with -open client connections held open, after one
	// request on each: -conns at a time (paced), or all at once (burst).
	openPaced, openBurst openResult

	// served and ok count every response the target gave and its 2xx
	// ones, probes and warm-up included: the work it was given.
	served, ok uint64
	// settle, when set, waits after a run until the target has finished
	// the work the run left behind (shadow comparisons, dual-write
	// deliveries to the secondary); that time and CPU count towards the
	// run. settled is the time it took over the measured rounds,
	// settleErr its last failure.
	settle    func(*target) (time.Duration, error)
	settled   time.Duration
	settleErr error
	ended     time.Time // when its last measured run ended
	// paced is the target's latency at a fixed offered load, for the
	// targets whose latency is compared with another's.
	paced pacedResult
}

type openResult struct {
	mem memory
	// goMem is the Go runtime's account of a strangler target's memory,
	// read right after mem; nil if not asked for, for the other targets,
	// or if /metrics could not be read.
	goMem *goMemory
	err   error
}

func (r openResult) done() bool { return r.mem != (memory{}) || r.err != nil }

// backendAddrs are the two listeners of the backend child.
type backendAddrs struct{ legacy, modern string }

func (s *supervisor) startBackend(self string) (backendAddrs, *child, error) {
	c, err := s.start("backend", "backend", exec.Command(self, "-role", "backend"))
	if err != nil {
		return backendAddrs{}, nil, err
	}
	line, err := c.waitLine("backend legacy=", 10*time.Second)
	if err != nil {
		return backendAddrs{}, nil, err
	}
	var b backendAddrs
	if _, err := fmt.Sscanf(line, "backend legacy=%s modern=%s", &b.legacy, &b.modern); err != nil {
		return backendAddrs{}, nil, fmt.Errorf("backend: unexpected first line %q", line)
	}
	return b, c, nil
}

// backendTarget drives the backend's legacy listener directly: no proxy,
// the ceiling the load generator and backend allow on this machine.
func backendTarget(b backendAddrs, c *child) *target {
	return &target{key: "direct", name: "backend, no proxy", addr: b.legacy, request: buildRequest("/bench"), proc: c}
}

func (s *supervisor) startBareProxy(self string, b backendAddrs) (*target, error) {
	t0 := time.Now()
	c, err := s.start("bare", "bare ReverseProxy", exec.Command(self, "-role", "bareproxy", "-target", "http://"+b.legacy))
	if err != nil {
		return nil, err
	}
	line, err := c.waitLine("listening ", 10*time.Second)
	if err != nil {
		return nil, err
	}
	t := &target{key: "bare", name: "bare ReverseProxy", addr: strings.TrimPrefix(line, "listening "),
		request: buildRequest("/bench"), proc: c}
	if err := waitReady(t, 10*time.Second); err != nil {
		return nil, err
	}
	t.startup = time.Since(t0)
	return t, nil
}

// benchToken is the admin token of every strangler the bench starts, for
// the flips it makes through the admin API.
const benchToken = "bench-admin-token-0123456789"

// stranglerSpec is one strangler process to start.
type stranglerSpec struct {
	key, name string
	routes    string // YAML list items
	request   []byte // what the load generator sends it
	// store is its state store; "" means a SQLite file of its own in the
	// bench's directory (never ./strangler.db where the bench runs).
	store string
	extra string // more top-level YAML, such as "debug_headers: true\n"
}

// stranglerConfig is a configuration with sp's routes in front of the
// bench backend.
func stranglerConfig(b backendAddrs, listen, admin, store string, sp stranglerSpec) string {
	return fmt.Sprintf(`listen: %q
admin:
  listen: %q
  tokens: [{ name: bench, token: %q, role: admin }]
store: %q
backends:
  legacy: { url: "http://%s", timeout: 5s }
  modern: { url: "http://%s", timeout: 5s }
default: legacy
%sroutes:
%s`, listen, admin, benchToken, store, b.legacy, b.modern, sp.extra, sp.routes)
}

func oneRoute(name, match, mode string) string {
	return fmt.Sprintf("  - { name: %s, match: %q, mode: %s }\n", name, match, mode)
}

// manyRoutes is a table of n legacy routes alternating between param
// patterns (GET /rI/items/{id}) and static ones (GET /rI/about); the
// returned path hits a param route in the middle of the table.
func manyRoutes(n int) (routes, path string) {
	var b strings.Builder
	for i := range n {
		if i%2 == 0 {
			b.WriteString(oneRoute(fmt.Sprintf("r%d", i), fmt.Sprintf("GET /r%d/items/{id}", i), "legacy"))
		} else {
			b.WriteString(oneRoute(fmt.Sprintf("r%d", i), fmt.Sprintf("GET /r%d/about", i), "legacy"))
		}
	}
	mid := n / 2 &^ 1
	return b.String(), fmt.Sprintf("/r%d/items/42", mid)
}

// startStrangler runs `strangler serve` with routes and waits until it
// serves. Its listeners take ports the kernel picks, read from its
// "serving" log line; with a log level that hides that line, ports picked
// beforehand.
func (s *supervisor) startStrangler(bin string, sp stranglerSpec, b backendAddrs, logLevel string) (*target, error) {
	// The admin address is spelt "localhost:0" because configuration
	// validation refuses an admin address written like the public one,
	// port 0 included.
	listen, admin := "127.0.0.1:0", "localhost:0"
	quiet := logLevel != "" && !strings.EqualFold(logLevel, "debug") && !strings.EqualFold(logLevel, "info")
	if quiet {
		var err1, err2 error
		listen, err1 = freePort()
		admin, err2 = freePort()
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
	}
	store := sp.store
	if store == "" {
		store = "sqlite:" + filepath.Join(s.dir, sp.key+".db")
	}
	cfgPath := filepath.Join(s.dir, sp.key+".yaml")
	if err := os.WriteFile(cfgPath, []byte(stranglerConfig(b, listen, admin, store, sp)), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Env = os.Environ()
	if logLevel != "" {
		cmd.Env = append(cmd.Env, "STRANGLER_LOG_LEVEL="+logLevel)
	}
	t0 := time.Now()
	c, err := s.start(sp.key, sp.name, cmd)
	if err != nil {
		return nil, err
	}
	if !quiet {
		line, err := c.waitLine(`"msg":"serving"`, 2*time.Minute)
		if err != nil {
			return nil, err
		}
		var serving struct{ Listen, Admin string }
		if err := json.Unmarshal([]byte(line), &serving); err != nil || serving.Listen == "" {
			return nil, fmt.Errorf("%s: cannot read the addresses from %q", sp.name, line)
		}
		listen, admin = serving.Listen, serving.Admin
	}
	t := &target{key: sp.key, name: sp.name, addr: listen, admin: admin, request: sp.request, proc: c}
	if err := waitReadyz(c, admin, 2*time.Minute); err != nil {
		return nil, err
	}
	if err := waitReady(t, 10*time.Second); err != nil {
		return nil, err
	}
	t.startup = time.Since(t0)
	return t, nil
}

// waitReadyz waits until strangler's admin /readyz answers 200.
func waitReadyz(c *child, admin string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := checkReadyz(admin)
		if err == nil {
			return nil
		}
		if e := c.exited(); e != nil {
			return e
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %w; its output:\n%s", c.name, err, c.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func checkReadyz(admin string) error {
	resp, err := http.Get("http://" + admin + "/readyz")
	if err != nil {
		return fmt.Errorf("admin /readyz: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("admin /readyz answered %s", resp.Status)
	}
	return nil
}

// waitReady waits until the target answers its request with a 2xx.
func waitReady(t *target, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		status, err := probe(t.addr, t.request)
		if err == nil {
			t.served++
		}
		if err == nil && status >= 200 && status <= 299 {
			t.ok++
			return nil
		}
		if err == nil {
			err = fmt.Errorf("status %d, want 2xx", status)
		}
		if e := t.proc.exited(); e != nil {
			return e
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s at %s is not answering: %w; its output:\n%s", t.name, t.addr, err, t.proc.tail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePort returns a loopback address that was free a moment ago, for
// peers that cannot report the port they bound.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startNginx runs nginx as a plain keep-alive reverse proxy: the reference
// point for a tuned C proxy on the same machine.
func (s *supervisor) startNginx(self, bin string, b backendAddrs) (*target, error) {
	dir := filepath.Join(s.dir, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	// keepalive_requests is raised on both sides (the default, 1000, makes
	// nginx close connections the Go servers would keep), so all targets
	// serve long-lived keep-alive connections alike.
	conf := fmt.Sprintf(`worker_processes auto;
worker_rlimit_nofile 16384;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    upstream backend {
        server %[2]s;
        keepalive 256;
        keepalive_requests 1000000;
    }
    server {
        listen %[3]s;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`, dir, b.legacy, addr)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	t0 := time.Now()
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
	c, err := s.start("nginx", "nginx", guarded(self, cmd))
	if err != nil {
		return nil, err
	}
	t := &target{key: "nginx", name: "nginx", addr: addr, request: buildRequest("/bench"), proc: c}
	if err := waitReady(t, 10*time.Second); err != nil {
		return nil, err
	}
	t.startup = time.Since(t0)
	return t, nil
}

// startHAProxy runs HAProxy as a plain keep-alive reverse proxy, the other
// tuned C proxy the facade is measured against, with as many threads as
// the machine has CPUs (its default) and backend connections shared
// between client connections.
func (s *supervisor) startHAProxy(self, bin string, b backendAddrs) (*target, error) {
	dir := filepath.Join(s.dir, "haproxy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf(`global
    maxconn 8000
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
frontend bench
    bind %s
    default_backend backend
backend backend
    http-reuse always
    server legacy %s
`, addr, b.legacy)
	confPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	t0 := time.Now()
	// -db: stay in the foreground, logging to stderr.
	c, err := s.start("haproxy", "HAProxy", guarded(self, exec.Command(bin, "-db", "-f", confPath)))
	if err != nil {
		return nil, err
	}
	t := &target{key: "haproxy", name: "HAProxy", addr: addr, request: buildRequest("/bench"), proc: c}
	if err := waitReady(t, 10*time.Second); err != nil {
		return nil, err
	}
	t.startup = time.Since(t0)
	return t, nil
}

// startCaddy runs Caddy with a one-line reverse_proxy site.
func (s *supervisor) startCaddy(_, bin string, b backendAddrs) (*target, error) {
	dir := filepath.Join(s.dir, "caddy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	conf := fmt.Sprintf("{\n\tadmin off\n\tauto_https off\n}\n\nhttp://%s {\n\treverse_proxy %s\n}\n", addr, b.legacy)
	confPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	t0 := time.Now()
	cmd := exec.Command(bin, "run", "--config", confPath, "--adapter", "caddyfile")
	// Caddy keeps state under $HOME / XDG dirs; keep it in the temp dir.
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	c, err := s.start("caddy", "Caddy", cmd)
	if err != nil {
		return nil, err
	}
	t := &target{key: "caddy", name: "Caddy", addr: addr, request: buildRequest("/bench"), proc: c}
	if err := waitReady(t, 15*time.Second); err != nil {
		return nil, err
	}
	t.startup = time.Since(t0)
	return t, nil
}

// metricSum fetches strangler's /metrics and sums the samples of one
// counter, to check that the fallback targets did what they are named for.
func metricSum(admin, name string) (float64, error) {
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var sum float64
	for line := range strings.Lines(string(body)) {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f := strings.Fields(line)
		var v float64
		if _, err := fmt.Sscan(f[len(f)-1], &v); err == nil {
			sum += v
		}
	}
	return sum, nil
}
