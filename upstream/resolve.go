package upstream

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
)

// lastKnown dials a backend by name, and when the name cannot be resolved
// (a resolver timing out or failing, or answering that the name does not
// exist) dials the address the last connection reached instead, as Envoy
// keeps a strict_dns cluster's hosts when a resolution fails: the facade
// cannot tell a broken resolver from a removed record, and a backend that
// still answers at its old address is worth more than every request
// failing with 502 for as long as the resolver does. A backend that has
// really gone refuses there, and that fails as any refused dial does.
//
// Of a name with several addresses, the dial uses the first that accepts
// a connection, in the resolver's order (Go's dialer's): no spread over
// them; the backend's own load balancer does that.
type lastKnown struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	last atomic.Pointer[string] // host:port of the last connection made
}

func (l *lastKnown) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	conn, err := l.dial(ctx, network, addr)
	var dnsErr *net.DNSError
	if err != nil && errors.As(err, &dnsErr) && ctx.Err() == nil {
		if last := l.last.Load(); last != nil {
			return l.dial(ctx, network, *last)
		}
	}
	if err != nil {
		return nil, err
	}
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		s := a.String()
		l.last.Store(&s)
	}
	return conn, nil
}
