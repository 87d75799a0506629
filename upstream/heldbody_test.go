package upstream

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

// countedConn counts the writes made on it.
type countedConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countedConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestARequestTheFacadeBuiltGoesOutInOneWrite: a request NewRequest built
// (a dual write's delivery, a shadow copy) has its body in memory, and its
// head and body leave in one write, one system call and one packet. Before,
// net/http sent the head on its own first, as for a body whose reads may
// wait: two writes a request. Each request is also read whole by the
// backend, body included.
func TestARequestTheFacadeBuiltGoesOutInOneWrite(t *testing.T) {
	const body = `{"first_name":"Patient","city":"Oslo"}`
	var got atomic.Value
	url, _ := writeBackend(t, func(c net.Conn, req *http.Request, _ time.Duration) bool {
		got.Store(req.Method + " " + req.Header.Get("Content-Length"))
		io.WriteString(c, "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
		return true
	})
	u := New("modern", Config{URL: mustURL(t, url), Timeout: 5 * time.Second})
	var writes atomic.Int64
	dial := u.direct.dial
	u.direct.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return countedConn{Conn: c, writes: &writes}, nil
	}
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch} {
		before := writes.Load()
		resp, err := u.RoundTrip(NewRequest(context.Background(), method, u.Target(&urlX), http.Header{"Content-Type": {"application/json"}}, []byte(body)))
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		if got := readAll(t, resp); resp.StatusCode != http.StatusCreated || got != "ok" {
			t.Fatalf("%s answered %d %q", method, resp.StatusCode, got)
		}
		if n := writes.Load() - before; n != 1 {
			t.Errorf("%s went out in %d writes, want 1", method, n)
		}
		if g, want := got.Load(), method+" 38"; g != want {
			t.Errorf("the backend read %v, want %q", g, want)
		}
	}
}
