package testkit

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Request is what a Backend saw of one request.
type Request struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
	// RemoteAddr is the connection the request came on: two requests with
	// the same one shared a pooled connection.
	RemoteAddr string
}

// Backend is a real HTTP server on loopback that records every request
// it receives (with its body read whole) and then lets its handler answer.
type Backend struct {
	*httptest.Server
	mu       sync.Mutex
	handler  http.HandlerFunc
	requests []Request
	arrived  chan struct{}
}

// NewBackend starts a backend answering with h (Answer(200, "") if nil),
// closed when the test ends.
func NewBackend(t testing.TB, h http.HandlerFunc) *Backend {
	t.Helper()
	if h == nil {
		h = Answer(http.StatusOK, "")
	}
	b := &Backend{handler: h, arrived: make(chan struct{}, 1)}
	b.Server = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.Close)
	return b
}

func (b *Backend) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	b.mu.Lock()
	b.requests = append(b.requests, Request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body, r.RemoteAddr})
	h := b.handler
	b.mu.Unlock()
	select {
	case b.arrived <- struct{}{}:
	default:
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	h(w, r)
}

// SetHandler makes h answer the requests from now on.
func (b *Backend) SetHandler(h http.HandlerFunc) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.handler = h
}

// Requests returns a copy of what the backend received, in order.
func (b *Backend) Requests() []Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]Request(nil), b.requests...)
}

// Hits is how many requests the backend received.
func (b *Backend) Hits() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.requests)
}

// Last is the latest request; it fails the test if there was none.
func (b *Backend) Last(t testing.TB) Request {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.requests) == 0 {
		t.Fatal("the backend received no request")
	}
	return b.requests[len(b.requests)-1]
}

// Arrived is signalled (without blocking the backend) after a request
// was recorded: a test waiting for requests can select on it rather than
// poll.
func (b *Backend) Arrived() <-chan struct{} { return b.arrived }

// Answer returns a handler that answers status with body as JSON.
func Answer(status int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// DeadURL is the URL of a loopback port nothing listens on: connecting to
// it is refused.
func DeadURL(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// WebSocketEcho is a backend handler that completes a WebSocket upgrade
// (a request whose Upgrade is exactly "websocket") with 101 Switching
// Protocols and then echoes every byte the tunnel carries until the other
// end closes it; plain serves every other request.
func WebSocketEcho(t testing.TB, plain http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			plain(w, r)
			return
		}
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		rw.Flush()
		io.Copy(conn, rw) // echo every byte back
	}
}
