//go:build unix

package upstream

import (
	"net"
	"syscall"
)

// peeker looks at a connection's socket without reading from it: before
// an idle connection is reused, and while it waits for an answer. It is
// set up once per connection, so that neither allocates (a RawConn and a
// closure each time otherwise).
type peeker struct {
	rc    syscall.RawConn // nil: nothing to look at
	err   error           // the socket could not be reached
	stale bool
	look  func(fd uintptr)

	waited bool
	ready  func(fd uintptr) bool
}

func (p *peeker) init(conn net.Conn) {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return
	}
	p.rc, p.err = sc.SyscallConn()
	p.look = func(fd uintptr) {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// Nothing to read (EAGAIN) is the one healthy answer; a byte,
		// the end of the stream (0, nil) or an error spoil it.
		p.stale = err != syscall.EAGAIN && err != syscall.EWOULDBLOCK
	}
	p.ready = func(fd uintptr) bool {
		if p.waited {
			// Woken by the poller: something arrived. (A wake with
			// nothing to read is possible; the read that follows then
			// waits as any read does.)
			return true
		}
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// An answer, its end or an error are all something to read; only
		// nothing yet (EAGAIN) is waited for.
		p.waited = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return !p.waited
	}
}

// awaitReadable waits, with no buffer, until the connection has something
// to read: an answer, its end, or an error. The read deadline and a
// closed connection end the wait as they end a read.
func (c *directConn) awaitReadable() error {
	p := &c.peek
	if p.rc == nil || p.err != nil {
		return nil // the read that follows waits
	}
	p.waited = false
	return p.rc.Read(p.ready)
}

// stale reports whether an idle connection can no longer carry a request:
// the backend closed it, or sent bytes nobody asked for (a body past its
// Content-Length, a body after a HEAD, 204 or 304), which the next
// request would otherwise read as its answer. It peeks at the socket
// without waiting, through Control, which no read deadline stands in the
// way of: a pooled connection keeps its last exchange's head deadline,
// past by now maybe (see release), where a RawConn's Read would fail
// before looking.
func (c *directConn) stale() bool {
	p := &c.peek
	switch {
	case p.err != nil:
		return true
	case p.rc == nil:
		return false
	}
	p.stale = true
	err := p.rc.Control(p.look)
	return p.stale || err != nil
}
