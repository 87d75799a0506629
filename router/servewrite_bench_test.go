package router

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config/configfile"
	"strangler/internal/testdb"
	"strangler/internal/testkit"
	"strangler/store"
)

// BenchmarkServeWrite measures a pass-through POST through the router's
// whole path, on loopback to a backend that reads the body and answers
// 201: a small JSON body, which the direct path sends on a pooled
// connection, and one past its bound, which goes on a connection of its
// own.
func BenchmarkServeWrite(b *testing.B) {
	backend := writeBenchBackend(b, "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"id\":1234}")
	cfg, err := configfile.Parse("bench.yaml", []byte(fmt.Sprintf(
		"backends:\n  legacy: {url: \"http://%s\"}\n  modern: {url: \"http://%s\"}\nroutes:\n  - {name: bench, match: 'POST /bench', mode: legacy}\n",
		backend, backend)), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		b.Fatal(err)
	}
	r := New(Deps{Metrics: NewMetrics(prometheus.NewRegistry()), Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	t, err := r.Build(cfg)
	if err != nil {
		b.Fatal(err)
	}
	r.Swap(t)
	for _, size := range []int{1 << 10, 128 << 10} {
		body := strings.Repeat("x", size)
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			w := &discardWriter{header: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.header)
				w.status = 0
				req := benchPost(body)
				r.ServeHTTP(w, req)
				if w.status != http.StatusCreated {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}

// writeBenchBackend answers every request, once its body was read, with answer.
func writeBenchBackend(tb testing.TB, answer string) string {
	tb.Helper()
	return testkit.ServeConns(tb, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
			if _, err := io.WriteString(c, answer); err != nil || req.Close {
				return
			}
		}
	})
}

// BenchmarkServeDualWrite measures a dual write's request path through the
// router: the intent journaled in an SQLite store, the POST forwarded to
// the primary, its answer recorded. The copy to the secondary is left to
// the repair workers, which do not run here.
func BenchmarkServeDualWrite(b *testing.B) {
	r := dualWriteBenchRouter(b, "sqlite:"+filepath.Join(b.TempDir(), "s.db"),
		"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"id\":1234}",
		"{name: bench, match: 'POST /bench', mode: dual-write, id_field: id}")
	body := `{"first_name":"Patient","last_name":"Number7","born":"1970-01-01","city":"Oslo"}`
	w := &discardWriter{header: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.header)
		w.status = 0
		req := benchPost(body)
		r.ServeHTTP(w, req.WithContext(context.Background()))
		if w.status != http.StatusCreated {
			b.Fatalf("status %d", w.status)
		}
	}
}

// dualWriteBenchRouter is a router serving route (a YAML flow mapping) with
// its journal in the store dsn names and a backend that answers every
// request with answer.
func dualWriteBenchRouter(b testing.TB, dsn, answer, route string) *Router {
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	st, err := store.Start(context.Background(), dsn, log)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	backend := writeBenchBackend(b, answer)
	cfg, err := configfile.Parse("bench.yaml", []byte(fmt.Sprintf(
		"backends:\n  legacy: {url: \"http://%s\"}\n  modern: {url: \"http://%s\"}\nroutes:\n  - %s\n",
		backend, backend, route)), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		b.Fatal(err)
	}
	r := New(Deps{Metrics: NewMetrics(prometheus.NewRegistry()), Log: log, Journal: storeJournal{Store: st}})
	t, err := r.Build(cfg)
	if err != nil {
		b.Fatal(err)
	}
	r.Swap(t)
	return r
}

// benchPost is a POST /bench of a JSON body, as net/http's server hands
// one to the router.
func benchPost(body string) *http.Request {
	return &http.Request{Method: http.MethodPost, RequestURI: "/bench", URL: &url.URL{Path: "/bench"},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{"Content-Type": {"application/json"}},
		Host: "facade", RemoteAddr: "127.0.0.1:1234", Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}
}

// BenchmarkServeDualWritePut measures a PUT's dual write, which takes its
// resource's turn with the primary, through the router on each store: the
// intent journaled, the turn taken, the PUT forwarded, its answer
// recorded. sequential sends PUTs to 64 items in turn, one at a time;
// 16writers has 16 clients at once, each to 4 items of its own, so that
// none waits for another's turn.
func BenchmarkServeDualWritePut(b *testing.B) {
	for _, kind := range []string{"sqlite", "postgres"} {
		b.Run(kind, func(b *testing.B) {
			dsn := "sqlite:" + filepath.Join(b.TempDir(), "s.db")
			if kind == "postgres" {
				dsn = testdb.Postgres(b)
			}
			r := dualWriteBenchRouter(b, dsn, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
				"{name: bench, match: 'PUT /bench/{id}', mode: dual-write}")
			body := `{"first_name":"Patient","last_name":"Number7","born":"1970-01-01","city":"Oslo"}`
			put := func(b *testing.B, w *discardWriter, item int) {
				clear(w.header)
				w.status = 0
				req := benchPost(body)
				req.Method = http.MethodPut
				req.URL.Path = fmt.Sprintf("/bench/%d", item)
				req.RequestURI = req.URL.Path
				r.ServeHTTP(w, req.WithContext(context.Background()))
				if w.status != http.StatusOK {
					b.Errorf("status %d", w.status)
				}
			}
			b.Run("sequential", func(b *testing.B) {
				w := &discardWriter{header: http.Header{}}
				i := 0
				b.ReportAllocs()
				for b.Loop() {
					put(b, w, i%64)
					i++
				}
			})
			b.Run("16writers", func(b *testing.B) {
				const writers = 16
				var next atomic.Int64
				b.SetParallelism((writers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					writer := int(next.Add(1) - 1)
					w := &discardWriter{header: http.Header{}}
					for i := 0; pb.Next(); i++ {
						put(b, w, writer*4+i%4)
					}
				})
			})
		})
	}
}
