package router

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config"
	"strangler/config/configfile"
)

// backend is a real HTTP server on loopback that records what it received.
type backend struct {
	*httptest.Server
	mu       sync.Mutex
	requests []received
}

// received is what a backend saw of one request.
type received struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

func newBackend(t *testing.T, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		b.mu.Lock()
		b.requests = append(b.requests, received{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		b.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		h(w, r)
	}))
	t.Cleanup(b.Close)
	return b
}

// answer returns a handler that replies with status and body.
func answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// tunnelEchoes sends handshake, a WebSocket upgrade written raw, to f;
// wants 101 Switching Protocols, and wants bytes written into the tunnel
// back from a webSocketEcho backend. It returns the client's end of the
// tunnel.
func tunnelEchoes(t *testing.T, f *facade, handshake string) net.Conn {
	t.Helper()
	line, _, _ := strings.Cut(handshake, "\r\n")
	conn, r := rawRequest(t, f, handshake)
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("%s: got %v, %v; want 101", line, resp, err)
	}
	conn.Write([]byte("hello over the tunnel"))
	buf := make([]byte, len("hello over the tunnel"))
	if _, err := io.ReadFull(r, buf); err != nil || string(buf) != "hello over the tunnel" {
		t.Errorf("%s: echo = %q, %v", line, buf, err)
	}
	return conn
}

func (b *backend) hits() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.requests)
}

func (b *backend) last(t *testing.T) received {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.requests) == 0 {
		t.Fatal("the backend received no request")
	}
	return b.requests[len(b.requests)-1]
}

// deadURL is the address of a port nothing listens on: connecting to it is
// refused.
func deadURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// facade is a router serving on loopback in front of two backends.
type facade struct {
	*httptest.Server
	router *Router
	reg    *prometheus.Registry
	logs   *syncBuffer
}

// newFacade serves the routes (YAML list items) with legacyURL and
// modernURL as the backends; extra is more top-level YAML.
func newFacade(t *testing.T, legacyURL, modernURL, extra, routes string) *facade {
	t.Helper()
	return serveConfig(t, testConfig(t, legacyURL, modernURL, extra, routes))
}

// serveConfig serves cfg with a new router on loopback; deps, if given,
// adds to the router's dependencies.
func serveConfig(t *testing.T, cfg *config.Config, deps ...func(*Deps)) *facade {
	t.Helper()
	f := &facade{reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	d := Deps{Metrics: NewMetrics(f.reg), Log: slog.New(slog.NewJSONHandler(f.logs, nil))}
	for _, add := range deps {
		add(&d)
	}
	f.router = New(d)
	table, err := f.router.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.router.Swap(table)
	f.Server = httptest.NewServer(f.router)
	// Tests send concurrent requests; the default two idle connections per
	// host would make most of them dial anew.
	f.Client().Transport.(*http.Transport).MaxIdleConnsPerHost = 16
	t.Cleanup(f.Close)
	return f
}

// testConfig is the configuration newFacade serves: backends that time
// out after a second.
func testConfig(t testing.TB, legacyURL, modernURL, extra, routes string) *config.Config {
	t.Helper()
	return parseConfig(t, fmt.Sprintf("backends:\n  legacy: {url: %q, timeout: 1s}\n  modern: {url: %q, timeout: 1s}\n%s\nroutes:\n%s",
		legacyURL, modernURL, extra, routes))
}

// parseConfig parses a configuration file's text.
func parseConfig(t testing.TB, yaml string) *config.Config {
	t.Helper()
	cfg, err := configfile.Parse("test.yaml", []byte(yaml), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	return cfg
}

// get sends a request through the facade and returns the response with its
// body read.
func (f *facade) do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := f.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func (f *facade) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return f.do(t, req)
}

// metric returns the value of the sample of name with exactly labels, or 0.
func (f *facade) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != name {
			continue
		}
	samples:
		for _, m := range fam.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue samples
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

// logLines returns the JSON log lines whose msg is msg.
func (f *facade) logLines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(f.logs.String()))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("log line is not JSON: %q", sc.Text())
		}
		if line["msg"] == msg {
			out = append(out, line)
		}
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
