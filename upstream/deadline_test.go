package upstream

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// deadlineConn records the read deadlines set on a connection: "set" for
// one in the future, "clear" for none.
type deadlineConn struct {
	net.Conn
	mu  sync.Mutex
	log []string
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	if t.IsZero() {
		c.log = append(c.log, "clear")
	} else {
		c.log = append(c.log, "set")
	}
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

// SyscallConn keeps the look at the socket before reuse (see peeker).
func (c *deadlineConn) SyscallConn() (syscall.RawConn, error) {
	return c.Conn.(syscall.Conn).SyscallConn()
}

func (c *deadlineConn) deadlines() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.log)
}

// TestAnAnswerThatCameWithItsHeadSetsOneReadDeadline: the head's read
// deadline also bounds the reads of a body that came with it, which wait
// for nothing, and stays as the connection goes back to the pool, whose
// look before reuse is no read: the next exchange sets its own. Each
// exchange set and cleared one for the head and again for the body (4
// deadline changes), then set one and cleared it as the connection went
// back (2), where 1 does. A body that has to be waited for gets a
// deadline of its own; a chunked one, which the backend may pause, none.
func TestAnAnswerThatCameWithItsHeadSetsOneReadDeadline(t *testing.T) {
	for _, tc := range []struct {
		name, head, body string
		// later: the body is written once the caller has the head.
		later bool
		want  []string
	}{
		{"body with the head", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "ok", false, []string{"set"}},
		{"body after the head", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "ok", true, []string{"set", "set"}},
		{"chunked body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "2\r\nok\r\n0\r\n\r\n", true, []string{"set", "clear"}},
		{"empty body", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "", false, []string{"set"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gotHead := make(chan struct{})
			addr := testkit.ServeConns(t, func(c net.Conn) {
				br := bufio.NewReader(c)
				for {
					if _, err := http.ReadRequest(br); err != nil {
						return
					}
					if !tc.later {
						io.WriteString(c, tc.head+tc.body)
						continue
					}
					io.WriteString(c, tc.head)
					<-gotHead
					io.WriteString(c, tc.body)
				}
			})
			u := New("legacy", Config{URL: mustURL(t, "http://"+addr), Timeout: 5 * time.Second})
			var conn *deadlineConn
			dial := u.direct.dial
			u.direct.dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				c, err := dial(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				conn = &deadlineConn{Conn: c}
				return conn, nil
			}
			resp, err := get(t, u)
			if err != nil {
				t.Fatal(err)
			}
			if tc.later {
				close(gotHead)
			}
			if body := readAll(t, resp); body != "ok" && tc.body != "" {
				t.Fatalf("body %q, want ok", body)
			}
			if got := conn.deadlines(); !slices.Equal(got, tc.want) {
				t.Errorf("read deadlines %v, want %v", got, tc.want)
			}
			// The next request takes the connection, however long after
			// the head's deadline: one in the past stands for that.
			conn.Conn.SetReadDeadline(time.Now().Add(-time.Second))
			u.direct.mu.Lock()
			idle := len(u.direct.idle)
			stale := idle == 1 && u.direct.idle[0].stale()
			u.direct.mu.Unlock()
			if idle != 1 || stale {
				t.Fatalf("%d idle connections (stale: %v), want the one used, fit for reuse", idle, stale)
			}
			first := conn // gotHead stays closed: the next body comes at once
			resp, err = get(t, u)
			if err != nil {
				t.Fatalf("the next request on the connection: %v", err)
			}
			if body := readAll(t, resp); body != "ok" && tc.body != "" {
				t.Fatalf("the next request's body %q, want ok", body)
			}
			if conn != first {
				t.Error("the next request dialed a new connection, want the pooled one")
			}
		})
	}
}
