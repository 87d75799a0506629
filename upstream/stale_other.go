//go:build !unix

package upstream

import "net"

// peeker has nothing to look with where there is no non-blocking peek.
type peeker struct{}

func (*peeker) init(net.Conn) {}

// stale reports whether an idle connection holds bytes nobody asked for;
// without a non-blocking peek at the socket, only those already read.
func (c *directConn) stale() bool { return c.br.Buffered() > 0 }
