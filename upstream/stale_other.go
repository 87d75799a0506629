//go:build !unix

package upstream

import "net"

// peeker has nothing to look with where there is no non-blocking peek.
type peeker struct{}

func (*peeker) init(net.Conn) {}

// awaitReadable leaves the waiting to the read that follows.
func (c *directConn) awaitReadable() error { return nil }

// stale reports whether an idle connection can no longer carry a request;
// without a non-blocking peek at the socket, it cannot tell, and the
// bytes already read stayed with the exchange that read them.
func (c *directConn) stale() bool { return false }
