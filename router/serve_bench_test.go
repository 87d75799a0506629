package router

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config/configfile"
	"strangler/internal/jsonlog"
	"strangler/internal/testkit"
)

// BenchmarkServe measures one request through the router's whole path, on
// loopback to a raw backend, in the modes whose cost is compared with
// pass-through: a fallback hit, a fallback miss (modern answers 404) and a
// shadow copy compared with legacy's answer. allocs/op is the figure that
// travels; the shadow comparison runs on the pool's goroutine, so its time
// shows in a CPU profile rather than in ns/op.
func BenchmarkServe(b *testing.B) {
	// About 1 KiB of JSON; modern has the keys in another order, so that
	// the shadow comparison parses both answers, as the bench's does.
	item := `{"id":%d,"first_name":"Patient","last_name":"Number%d","address":{"street":"Karl Johans gate 1","city":"Oslo"},"active":true}`
	reordered := `{"active":true,"address":{"city":"Oslo","street":"Karl Johans gate 1"},"last_name":"Number%d","first_name":"Patient","id":%d}`
	var items, itemsReordered []string
	for i := range 6 {
		items = append(items, fmt.Sprintf(item, 1000+i, i))
		itemsReordered = append(itemsReordered, fmt.Sprintf(reordered, i, 1000+i))
	}
	page := `{"page":1,"per_page":6,"total":600,"items":[` + strings.Join(items, ",") + `]}`
	pageReordered := `{"items":[` + strings.Join(itemsReordered, ",") + `],"total":600,"per_page":6,"page":1}`
	legacy := rawBackend(b, rawJSONAnswer("200 OK", page))
	modern := rawBackend(b, rawJSONAnswer("404 Not Found", `{"error":"not found"}`))
	hit := rawBackend(b, rawJSONAnswer("200 OK", pageReordered))
	for _, bc := range []struct {
		name, modern, route string
		// socket: the client's write deadlines (body_timeout) are set
		// on a loopback connection, as net/http's writer sets them,
		// each a change of the runtime's timer; else they cost nothing.
		socket bool
	}{
		{"legacy", modern, "mode: legacy", false},
		{"legacy-socket", modern, "mode: legacy", true},
		{"fallback-hit", hit, "mode: fallback", false},
		{"fallback-miss", modern, "mode: fallback", false},
		{"shadow", hit, "mode: shadow, primary: legacy, compare: {sample: 1, max_inflight: 1024}", false},
	} {
		b.Run(bc.name, func(b *testing.B) {
			w := &discardWriter{header: http.Header{}}
			if bc.socket {
				conn, err := net.Dial("tcp", testkit.ServeConns(b, func(c net.Conn) { io.Copy(io.Discard, c) }))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { conn.Close() })
				w.socket = conn
			}
			serve, _ := benchRouterTo(b, w, legacy, bc.modern, bc.route)
			b.ReportAllocs()
			for b.Loop() {
				serve()
			}
		})
	}
}

// benchRouter returns a function that serves one GET /bench through a
// router whose one route is set up as route says, in front of the raw
// backends legacy and modern, and the router.
func benchRouter(tb testing.TB, legacy, modern, route string) (serve func(), r *Router) {
	tb.Helper()
	return benchRouterTo(tb, &discardWriter{header: http.Header{}}, legacy, modern, route)
}

// benchRouterTo is benchRouter serving to w.
func benchRouterTo(tb testing.TB, w *discardWriter, legacy, modern, route string) (serve func(), r *Router) {
	tb.Helper()
	cfg, err := configfile.Parse("bench.yaml", []byte(fmt.Sprintf(
		"backends:\n  legacy: {url: \"http://%s\"}\n  modern: {url: \"http://%s\"}\nroutes:\n  - {name: bench, match: 'GET /bench', %s}\n",
		legacy, modern, route)), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		tb.Fatal(err)
	}
	// The clock stands still: the routes learn response schemas from the
	// first schemaAnswersPerSecond answers alone, not from a share of them
	// that grows as requests slow down (under callgrind, a fifth of them).
	now := time.Now()
	// The facade's own log handler, whose cost the fallback line carries.
	r = New(Deps{Metrics: NewMetrics(prometheus.NewRegistry()), Log: slog.New(jsonlog.NewHandler(io.Discard, slog.LevelInfo)),
		Now: func() time.Time { return now }})
	t, err := r.Build(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	r.Swap(t)
	return func() {
		clear(w.header)
		w.status = 0
		req := &http.Request{Method: http.MethodGet, RequestURI: "/bench", URL: &url.URL{Path: "/bench"},
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{}, Host: "facade", RemoteAddr: "127.0.0.1:1234"}
		r.ServeHTTP(w, req)
		if w.status != http.StatusOK {
			tb.Fatalf("status %d", w.status)
		}
	}, r
}

// discardWriter is a ResponseWriter that keeps the status and drops the body.
type discardWriter struct {
	header http.Header
	status int
	// socket, when set, takes the write deadlines.
	socket net.Conn
}

func (w *discardWriter) Header() http.Header         { return w.header }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// SetWriteDeadline takes the deadline the facade sets before each write
// (body_timeout), as net/http's writer does without allocating: without
// it, each write built an ErrNotSupported error production never pays.
func (w *discardWriter) SetWriteDeadline(t time.Time) error {
	if w.socket != nil {
		return w.socket.SetWriteDeadline(t)
	}
	return nil
}

// rawJSONAnswer is a complete response with a JSON body, for rawBackend.
func rawJSONAnswer(status, body string) string {
	return fmt.Sprintf("HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", status, len(body), body)
}
