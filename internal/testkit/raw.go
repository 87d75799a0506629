package testkit

import (
	"net"
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
