//go:build !unix

package upstream

// stale reports whether an idle connection holds bytes nobody asked for;
// without a non-blocking peek at the socket, only those already read.
func (c *directConn) stale() bool { return c.br.Buffered() > 0 }
