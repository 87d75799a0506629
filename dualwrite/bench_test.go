package dualwrite

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
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config/configfile"
	"strangler/internal/testkit"
	"strangler/router"
	"strangler/store"
)

// BenchmarkDualWriteDelivered measures a dual write as the facade runs
// it, end to end: a POST through the router, its intent journaled in an
// SQLite store, the primary called on loopback and its answer recorded
// leased to the worker, which delivers the request in hand to the
// secondary on loopback and settles it in the journal. settled waits for
// each write's settle before the next write (a paced load: the delivery
// result commits on its own); steady sends one write after the other
// and waits for all to settle at the end (a busy facade: results share
// the commits of the writes after them). The writes are to different
// resources, except in the "one" runs, where the primary answers the
// same id every time: each write queues behind the one before (many
// clients updating one record), and the worker claims it from the
// queue once that one settled.
func BenchmarkDualWriteDelivered(b *testing.B) {
	for _, mode := range []string{"settled", "steady", "settled-one", "steady-one"} {
		b.Run(mode, func(b *testing.B) {
			one := strings.HasSuffix(mode, "-one")
			mode = strings.TrimSuffix(mode, "-one")
			settled := make(chan struct{}, 1<<16)
			rtr := deliveringFacade(b, one, func(route, result string) {
				if result != "applied" {
					b.Errorf("a delivery ended %s", result)
				}
				settled <- struct{}{}
			})
			body := `{"first_name":"Patient","last_name":"Number7","born":"1970-01-01","city":"Oslo"}`
			w := &benchWriter{header: http.Header{}}
			n := 0
			b.ReportAllocs()
			for b.Loop() {
				clear(w.header)
				w.status = 0
				rtr.ServeHTTP(w, benchPost(body))
				if w.status != http.StatusCreated {
					b.Fatalf("status %d", w.status)
				}
				n++
				if mode == "settled" {
					<-settled
					n--
				}
			}
			for ; n > 0; n-- {
				<-settled
			}
		})
	}
}

// deliveringFacade is the facade's router with a dual-write route whose
// primary (legacy) and secondary (modern) answer 201 on loopback, its
// journal in a new SQLite store, and the worker delivering what the
// journal hands it until the benchmark ends; count hears each step the
// worker counts in the router's metrics. With one set the primary
// answers the same id every time: every write is to one resource.
func deliveringFacade(b *testing.B, one bool, count func(route, result string)) *router.Router {
	b.Helper()
	log := slog.New(slog.DiscardHandler)
	st, err := store.Start(context.Background(), "sqlite:"+filepath.Join(b.TempDir(), "s.db"), log)
	if err != nil {
		b.Fatal(err)
	}
	// The primary creates a new item each time, as bench/proxy's does:
	// the writes are to different resources, none waiting for another.
	var next atomic.Int64
	primary := answering(b, func() string {
		id := strconv.FormatInt(1_000_000+next.Add(1), 10)
		if one {
			id = "1000000"
		}
		return "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(len(`{"id":}`)+len(id)) + "\r\n\r\n{\"id\":" + id + "}"
	})
	secondary := answering(b, func() string {
		return "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"id\":1234}"
	})
	cfg, err := configfile.Parse("bench.yaml", fmt.Appendf(nil,
		"backends:\n  legacy: {url: \"http://%s\"}\n  modern: {url: \"http://%s\"}\nroutes:\n  - {name: bench, match: 'POST /bench', mode: dual-write, id_field: id}\n",
		primary, secondary), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		b.Fatal(err)
	}
	kicks := NewKicks()
	journal := NewOutcomes(st, kicks, prometheus.NewRegistry(), log)
	metrics := router.NewMetrics(prometheus.NewRegistry())
	rtr := router.New(router.Deps{Metrics: metrics, Log: log, Journal: journal})
	table, err := rtr.Build(cfg)
	if err != nil {
		b.Fatal(err)
	}
	rtr.Swap(table)
	w := New(st, rtr, kicks, cfg.Repairs, prometheus.NewRegistry(), func(route, result string) {
		metrics.DualWrite(route, result)
		count(route, result)
	}, log)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	b.Cleanup(func() {
		stop()
		<-done
		st.Close()
	})
	return rtr
}

// answering is a backend that answers every request, once its body was
// read, with what answer returns.
func answering(b *testing.B, answer func() string) string {
	return testkit.ServeConns(b, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			if _, err := io.Copy(io.Discard, req.Body); err != nil {
				return
			}
			if _, err := io.WriteString(c, answer()); err != nil || req.Close {
				return
			}
		}
	})
}

// benchPost is a POST /bench of a JSON body, as net/http's server hands
// one to the router.
func benchPost(body string) *http.Request {
	return &http.Request{Method: http.MethodPost, RequestURI: "/bench", URL: &url.URL{Path: "/bench"},
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{"Content-Type": {"application/json"}},
		Host: "facade", RemoteAddr: "127.0.0.1:1234", Body: io.NopCloser(strings.NewReader(body)), ContentLength: int64(len(body))}
}

// benchWriter is a ResponseWriter that keeps the status and drops the body.
type benchWriter struct {
	header http.Header
	status int
}

func (w *benchWriter) Header() http.Header { return w.header }

func (w *benchWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *benchWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}
