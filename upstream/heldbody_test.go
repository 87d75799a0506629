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
// (a dual write's delivery, a shadow copy), or one whose body the facade
// read whole before forwarding it (a dual write's or a shadowed request's
// to its primary: Held, kept open by KeepOpen), has its body in memory,
// and its head and body leave in one write, one system call and one
// packet. Before, net/http sent the head on its own first, as for a body
// whose reads may wait: two writes a request. Each request is also read
// whole by the backend, body included.
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
	built := func(method string) *http.Request {
		return NewRequest(context.Background(), method, u.Target(&urlX), http.Header{"Content-Type": {"application/json"}}, []byte(body))
	}
	forwarded := func(method string) *http.Request {
		req := built(method)
		req.Body = KeepOpen(Held([]byte(body)))
		req.GetBody = nil
		return req
	}
	for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodPatch} {
		for name, req := range map[string]*http.Request{"built": built(method), "forwarded": forwarded(method)} {
			before := writes.Load()
			resp, err := u.RoundTrip(req)
			if err != nil {
				t.Fatalf("%s %s: %v", name, method, err)
			}
			if got := readAll(t, resp); resp.StatusCode != http.StatusCreated || got != "ok" {
				t.Fatalf("%s %s answered %d %q", name, method, resp.StatusCode, got)
			}
			if n := writes.Load() - before; n != 1 {
				t.Errorf("%s %s went out in %d writes, want 1", name, method, n)
			}
			if g, want := got.Load(), method+" 38"; g != want {
				t.Errorf("the backend read %v, want %q", g, want)
			}
		}
	}
}
