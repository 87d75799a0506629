package testkit

import (
	"net"
	"syscall"
	"testing"
)

// ServeConns listens on loopback and runs serve on each connection, on a
// goroutine of its own, closing the connection when serve returns: a
// backend that speaks raw bytes, for answers no HTTP server would write.
// It returns the listener's address; the listener closes when the test
// ends.
func ServeConns(t testing.TB, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// DialSmallWindow dials addr with a receive buffer of 4 KiB, set before
// the handshake, for a client that stops reading: it fills its window
// (and the server's send buffer, which grows only with the window)
// within a few answers, however slowly a loaded machine writes them.
// With the default window a server may need longer than a test waits to
// fill megabytes. The connection closes when the test ends.
func DialSmallWindow(t testing.TB, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		c.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return err
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
