package router

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config/configfile"
	"strangler/domain"
	"strangler/edge"
	"strangler/internal/testkit"
)

// BenchmarkEffectiveMode measures what the request path pays to learn a
// request's route and its effective mode: an atomic load of the current
// table, the edge's checks and the canonical path, and a lookup in the
// table; no lock, no allocation.
func BenchmarkEffectiveMode(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprintf("%d routes", n), func(b *testing.B) {
			r := New(Deps{Metrics: NewMetrics(prometheus.NewRegistry()), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			var yaml strings.Builder
			yaml.WriteString("backends:\n  legacy: {url: 'http://legacy'}\n  modern: {url: 'http://modern'}\nroutes:\n")
			for i := range n {
				fmt.Fprintf(&yaml, "  - {name: r%d, match: 'GET /r%d/items/{id}', mode: fallback}\n", i, i)
			}
			cfg, err := configfile.Parse("bench.yaml", []byte(yaml.String()), configfile.Env{Getenv: func(string) string { return "" }})
			if err != nil {
				b.Fatal(err)
			}
			t, err := r.Build(cfg)
			if err != nil {
				b.Fatal(err)
			}
			r.Swap(t)
			target := fmt.Sprintf("/r%d/items/42", n/2)
			req := &http.Request{Method: http.MethodGet, RequestURI: target, URL: &url.URL{Path: target}, Header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				var x exchange
				_, err := r.table.Load().admit(req, &x)
				if err != nil || x.route.mode != domain.ModeFallback {
					b.Fatal("wrong route")
				}
			}
		})
	}
}

// BenchmarkPassThrough measures a legacy-mode GET end to end on loopback:
// the public listener's server and framing checks, the router, and the
// backend connection pool, as the binary serves it. The backend and the
// client speak raw HTTP/1.1 from fixed bytes so that the allocations
// counted are the facade's.
func BenchmarkPassThrough(b *testing.B) {
	body := strings.Repeat("x", 1024)
	backend := rawBackend(b, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1024\r\n\r\n"+body)
	cfg := testConfig(b, "http://"+backend, "http://"+backend, "", "  - {name: bench, match: 'GET /bench', mode: legacy}\n")
	r := New(Deps{Metrics: NewMetrics(prometheus.NewRegistry()), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	table, err := r.Build(cfg)
	if err != nil {
		b.Fatal(err)
	}
	r.Swap(table)
	srv, err := edge.NewServer(r, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(edge.TrackFraming(ln))
	b.Cleanup(func() { srv.Close() })

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	req := []byte("GET /bench HTTP/1.1\r\nHost: bench.local\r\nUser-Agent: strangler-bench\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReader(c)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if n := readAnswer(b, br); n != len(body) {
			b.Fatalf("got a body of %d bytes, want %d", n, len(body))
		}
	}
}

// rawBackend serves every request on loopback with answer, a complete
// response, and returns its address.
func rawBackend(tb testing.TB, answer string) string {
	tb.Helper()
	out := []byte(answer)
	return testkit.ServeConns(tb, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			// A request without a body ends at its empty line.
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) <= 2 {
					break
				}
			}
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	})
}

// readAnswer reads one response with a Content-Length from br and returns
// the length of its body; it fails tb on anything but a 200.
func readAnswer(tb testing.TB, br *bufio.Reader) int {
	tb.Helper()
	line, err := br.ReadSlice('\n')
	if err != nil || !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
		tb.Fatalf("status line %q: %v", line, err)
	}
	n := -1
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			tb.Fatal(err)
		}
		if len(line) <= 2 {
			break
		}
		if name, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(name, []byte("Content-Length")) {
			n, _ = strconv.Atoi(string(bytes.TrimSpace(v)))
		}
	}
	if _, err := br.Discard(n); err != nil {
		tb.Fatal(err)
	}
	return n
}
