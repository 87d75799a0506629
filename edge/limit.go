package edge

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/metrics"
)

// DefaultMaxConnections is the public listener's cap on client connections
// when max_connections is unset: half of the process's open-file limit
// (RLIMIT_NOFILE, which Go raises to its hard limit at start). The other
// half is for what a client connection leads to and what must keep
// working while clients flood in: a connection to a backend per request
// in flight (two for a shadow or a dual write), the backends' idle pools,
// the store's connections, the admin listener and the files the process
// opens. A limit too large for an int (unlimited) counts as 2^21, twice
// Linux's default ceiling on one process's descriptors (fs.nr_open).
func DefaultMaxConnections(nofile uint64) int {
	return int(min(nofile, 1<<21) / 2)
}

// fullLogEvery spaces out the warning that the listener is full: a
// listener at its cap reaches it again each time a connection closes.
const fullLogEvery = time.Minute

// Bounded is a listener LimitConnections bounds, as its metrics and its
// warning name it.
type Bounded struct {
	// Open, Max and Full are its metrics: the connections it holds, its
	// bound, and the times it was full when ready for the next client.
	Open, Max, Full metrics.Def
	// Warning is logged when it fills, with its bound as max_connections.
	Warning string
}

// The facade's two listeners.
var (
	PublicListener = Bounded{metrics.ClientConnections, metrics.ClientConnectionsMax, metrics.ClientConnectionsFull,
		"the public listener holds max_connections client connections; further clients wait in the kernel's backlog until one closes"}
	AdminListener = Bounded{metrics.AdminConnections, metrics.AdminConnectionsMax, metrics.AdminConnectionsFull,
		"the admin listener holds max_connections connections; further clients, scrapes included, wait in the kernel's backlog until one closes"}
)

// LimitConnections returns ln holding at most n connections at once. At
// n, Accept waits until one of them closes, so further clients wait in
// the kernel's listen backlog, as behind nginx's worker_connections or
// HAProxy's maxconn: the cheapest answer there is, which costs the process
// no descriptor, and a client that gives up costs it nothing at all.
// Refusing instead (accept, answer 503, close) would spend a descriptor
// and a write per refused client at the very moment descriptors run out.
// The metrics b names go to reg; the listener logs b's warning when it
// fills, at most once a minute.
//
// netutil.LimitListener does the same waiting but cannot tell how many
// connections are open or that Accept is waiting, which the metrics and
// the warning need.
func LimitConnections(ln net.Listener, n int, b Bounded, reg prometheus.Registerer, log *slog.Logger) net.Listener {
	l := &limitListener{Listener: ln, slots: make(chan struct{}, n), done: make(chan struct{}), log: log,
		full: b.Full.Counter(), warning: b.Warning}
	reg.MustRegister(l.full,
		b.Open.GaugeFunc(func() float64 { return float64(l.open.Load()) }),
		b.Max.GaugeFunc(func() float64 { return float64(n) }))
	return l
}

type limitListener struct {
	net.Listener
	// slots holds a token per connection open or being accepted.
	slots     chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	open      atomic.Int64
	full      prometheus.Counter
	warning   string
	log       *slog.Logger
	// lastFullLog is when the warning was last logged; only Accept, which
	// net/http calls from one goroutine, reads and writes it.
	lastFullLog time.Time
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	default:
		l.full.Inc()
		if now := time.Now(); now.Sub(l.lastFullLog) >= fullLogEvery {
			l.lastFullLog = now
			l.log.Warn(l.warning, "max_connections", cap(l.slots))
		}
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	l.open.Add(1)
	return &limitedConn{Conn: c, l: l}, nil
}

// Close closes the listener and ends an Accept waiting for a free slot.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// limitedConn gives its slot back when it is closed, once however often
// net/http closes it.
type limitedConn struct {
	net.Conn
	l       *limitListener
	release sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.release.Do(func() {
		c.l.open.Add(-1)
		<-c.l.slots
	})
	return err
}

// CloseWrite and ReadFrom pass on what the TCP connection underneath
// offers: net/http half-closes after an error answer so that the client
// reads it, upgraded connections are half-closed the same way, and
// ReadFrom keeps the kernel's splice for bodies copied to the client.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

func (c *limitedConn) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(c.Conn, r)
}
