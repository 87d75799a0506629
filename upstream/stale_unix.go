//go:build unix

package upstream

import "syscall"

// stale reports whether an idle connection can no longer carry a request:
// the backend closed it, or sent bytes nobody asked for (a body past its
// Content-Length, a body after a HEAD, 204 or 304), which the next
// request would otherwise read as its answer. It peeks at the socket
// without waiting: a read deadline in the past would fail before looking.
func (c *directConn) stale() bool {
	if c.br.Buffered() > 0 {
		return true
	}
	sc, ok := c.conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	stale := true
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Nothing to read (EAGAIN) is the one healthy answer; a byte,
		// the end of the stream (0, nil) or an error spoil it.
		stale = err != syscall.EAGAIN && err != syscall.EWOULDBLOCK
		return true
	})
	return stale || err != nil
}
