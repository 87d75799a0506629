package edge

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// get sends a GET on c and reads the answer's status line, waiting at
// most wait.
func get(c net.Conn, wait time.Duration) (string, error) {
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return "", err
	}
	c.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	return resp.Status, nil
}

func TestTheConnectionPastTheCapWaitsUntilOneCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	logs := &lockedBuffer{}
	limited := LimitConnections(ln, 2, PublicListener, reg, slog.New(slog.NewJSONHandler(logs, nil)))
	srv, err := NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(TrackFraming(limited)) }()

	var held []net.Conn
	for i := range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if status, err := get(c, 10*time.Second); err != nil {
			t.Fatalf("connection %d of 2: %v, want an answer", i+1, err)
		} else if status != "200 OK" {
			t.Fatalf("connection %d of 2: got %s", i+1, status)
		}
		held = append(held, c)
	}
	third, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("the kernel's backlog should take the third connection: %v", err)
	}
	defer third.Close()
	if status, err := get(third, time.Second); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("third connection with two held: got %q, %v; want no answer", status, err)
	}
	if got := gauge(t, reg, "strangler_client_connections"); got != 2 {
		t.Errorf("open connections: got %v, want 2", got)
	}
	if got := gauge(t, reg, "strangler_client_connections_full_total"); got < 1 {
		t.Errorf("times full: got %v, want at least 1", got)
	}
	if !strings.Contains(logs.String(), "the public listener holds max_connections client connections") {
		t.Errorf("no warning that the listener is full; logs:\n%s", logs.String())
	}

	held[0].Close()
	// The request already sent waits on the connection; the server reads
	// it once it accepts.
	third.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(third), nil)
	if err != nil {
		t.Fatalf("third connection after one of two closed: %v, want an answer", err)
	}
	resp.Body.Close()

	srv.Close()
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("Serve: %v", err)
	}
}

// gauge reads the value of the metric named name, without labels, from reg.
func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// lockedBuffer is a log's destination that the test reads while the
// server writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestTheDefaultCapIsHalfTheOpenFileLimit(t *testing.T) {
	for _, tc := range []struct {
		nofile uint64
		want   int
	}{
		{256, 128},
		{524288, 262144},
		// RLIM_INFINITY: no process holds more than fs.nr_open anyway.
		{^uint64(0), 1 << 20},
	} {
		if got := DefaultMaxConnections(tc.nofile); got != tc.want {
			t.Errorf("open-file limit %d: got %d, want %d", tc.nofile, got, tc.want)
		}
	}
}

// net/http half-closes after an error answer, and the router half-closes
// upgraded connections; through the cap as through the framing check,
// CloseWrite must reach the TCP connection.
func TestACappedConnectionStillHalfCloses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	limited := TrackFraming(LimitConnections(ln, 1, PublicListener, prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer limited.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := limited.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	if err := server.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := client.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("client read after the half-close: got %d, %v; want EOF", n, err)
	}
}
