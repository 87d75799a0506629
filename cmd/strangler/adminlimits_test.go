package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"strangler/edge"
	"strangler/internal/testkit"
)

// TestNoClientHoldsAnAdminConnection: a client of the admin listener,
// with or without a token, cannot keep a connection (a goroutine and a
// file descriptor of the facade) past the listener's limits: idle after
// an answer, sending a body a byte at a time, never sending the body of
// a change it is refused anyway, or not reading its answers.
func TestNoClientHoldsAnAdminConnection(t *testing.T) {
	// Its subtests wait out the listener's timeouts: with the other
	// waiting tests, and each on its own connection, together.
	t.Parallel()
	legacy := backendAnswering(t, `{"served_by":"legacy"}`)
	dir := t.TempDir()
	path := writeConfig(t, filepath.Join(dir, "strangler.yaml"), legacy.URL, legacy.URL, `  - { name: get-record, match: "GET /records/{id}", mode: legacy }
`)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	withToken := strings.Replace(string(b), `admin: { listen: "127.0.0.1:0" }`,
		`admin: { listen: "127.0.0.1:0", tokens: [{ name: op, token: "op-token-0123456789abcdef", role: operator }] }`, 1)
	if err := os.WriteFile(path, []byte(withToken), 0o644); err != nil {
		t.Fatal(err)
	}
	const limit = 2 * time.Second
	r := startServeWith(t, path, facadeOptions{adminLimits: adminLimits{read: limit, write: limit, idle: limit}})

	// closedWithin reports whether the server closed conn within d, after
	// whatever it still had to send.
	closedWithin := func(t *testing.T, conn net.Conn, d time.Duration) bool {
		t.Helper()
		conn.SetReadDeadline(time.Now().Add(d))
		_, err := io.Copy(io.Discard, conn)
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
	dial := func(t *testing.T, raw string) net.Conn {
		t.Helper()
		// A client that does not read its answers must fill the buffers.
		conn := testkit.DialSmallWindow(t, r.admin)
		if _, err := io.WriteString(conn, raw); err != nil {
			t.Fatal(err)
		}
		return conn
	}
	// Generous against a loaded machine, and still well short of forever.
	const wait = 10 * limit

	t.Run("a connection kept alive after an answer is closed once idle", func(t *testing.T) {
		t.Parallel()
		conn := dial(t, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
		conn.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 512)
		n, err := conn.Read(buf)
		if err != nil || !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 200")) {
			t.Fatalf("got %q, %v; want a 200", buf[:n], err)
		}
		if !closedWithin(t, conn, wait) {
			t.Errorf("the idle connection is still open after %v", wait)
		}
	})
	t.Run("a login whose body never ends is cut off", func(t *testing.T) {
		t.Parallel()
		conn := dial(t, "POST /login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ntoken=op-")
		if !closedWithin(t, conn, wait) {
			t.Errorf("the login is still open after %v", wait)
		}
	})
	t.Run("a change without a token whose body never comes is cut off", func(t *testing.T) {
		t.Parallel()
		conn := dial(t, "PATCH /admin/routes/get-record HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"reason\":")
		if !closedWithin(t, conn, wait) {
			t.Errorf("the change is still open after %v", wait)
		}
	})
	t.Run("a head over 64 KiB is refused", func(t *testing.T) {
		t.Parallel()
		conn := dial(t, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Pad: "+strings.Repeat("a", 64<<10)+"\r\n\r\n")
		conn.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 512)
		n, _ := io.ReadAtLeast(conn, buf, len("HTTP/1.1 431"))
		if !bytes.HasPrefix(buf[:n], []byte("HTTP/1.1 431")) {
			t.Errorf("got %q; want 431", buf[:n])
		}
	})
	t.Run("a client that does not read its answers is cut off", func(t *testing.T) {
		t.Parallel()
		// Enough pipelined /metrics answers to fill both sides' socket
		// buffers many times over.
		const asked = 5000
		conn := dial(t, "")
		go io.WriteString(conn, strings.Repeat("GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n", asked))
		time.Sleep(wait)
		conn.SetReadDeadline(time.Now().Add(wait))
		answers, lines := 0, bufio.NewReader(conn)
		for {
			line, err := lines.ReadSlice('\n')
			if bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
				answers++
			}
			if errors.Is(err, bufio.ErrBufferFull) {
				continue
			}
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("the connection is still open after %v (%d answers read)", 2*wait, answers)
				}
				break
			}
		}
		if answers >= asked {
			t.Errorf("got all %d answers; want the connection cut once an answer waited %v for its client", answers, limit)
		}
	})
}

// TestAnAdminRefusalDoesNotWaitForTheBody: with the admin listener's own
// limits (a 30 s read timeout), a request it refuses without reading its
// body is answered at once, and its connection closed after the
// lingering read, whether or not the client ever sends the body it
// declared; as the public listener answers its refusals.
func TestAnAdminRefusalDoesNotWaitForTheBody(t *testing.T) {
	legacy := backendAnswering(t, `[]`)
	r := startServeAt(t, writeStatusPageConfig(t, legacy.URL, legacy.URL), time.Now)
	const change = "/admin/routes/get-patient HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
	for _, c := range []struct {
		name, head string
		length     int
		want       string
	}{
		{"a change without a token", "PATCH " + change, 1000, "401"},
		{"a change by a viewer", "PATCH " + change + "Authorization: Bearer " + statusPageViewerToken + "\r\n", 1000, "403"},
		{"a method no endpoint takes", "PUT " + change, 1000, "405"},
		{"a change declared over 64 KiB", "PATCH " + change + "Authorization: Bearer " + statusPageToken + "\r\nIf-Match: \"0\"\r\n", 100 << 10, "413"},
		{"a status page form without a session", "POST /ui/routes/get-patient HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\n", 1000, "403"},
		{"a path no endpoint serves", "POST /nowhere HTTP/1.1\r\nHost: localhost\r\n", 1000, "404"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			conn, err := net.Dial("tcp", r.admin)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			start := time.Now()
			if _, err := fmt.Fprintf(conn, "%sContent-Length: %d\r\n\r\n{\"", c.head, c.length); err != nil {
				t.Fatal(err)
			}
			// Seconds, not the read timeout's 30, on a loaded machine.
			conn.SetReadDeadline(start.Add(3 * time.Second))
			status, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil {
				t.Fatalf("no answer after %v while the body is outstanding: %v", time.Since(start).Round(time.Millisecond), err)
			}
			if !strings.HasPrefix(status, "HTTP/1.1 "+c.want+" ") {
				t.Errorf("got %q; want %s", status, c.want)
			}
			conn.SetReadDeadline(start.Add(3 * edge.RefusalLinger))
			if _, err := io.Copy(io.Discard, conn); err != nil {
				t.Errorf("the connection is still open after %v: %v", 3*edge.RefusalLinger, err)
			}
		})
	}
}
