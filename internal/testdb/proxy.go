package testdb

import (
	"bytes"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a TCP proxy in front of a database server that a test can cut
// off and restore, to see how a client behaves when its server becomes
// unreachable and comes back.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	up    bool
	conns map[net.Conn]bool
	// muted drops what the server sends: a statement reaches the server
	// and runs, and its answer never arrives. muteOn, once a client sends
	// it, sets muted.
	muted  atomic.Bool
	muteOn atomic.Pointer[[]byte]
	// cutOn, once a client sends it, cuts every connection before the
	// bytes carrying it are passed on; it is cleared as it fires.
	cutOn atomic.Pointer[[]byte]
	cuts  atomic.Int32
	// cutStays makes cutOn's cut refuse new connections too (GoneOn).
	cutStays atomic.Bool
	// silent drops what either side sends, on every connection, new ones
	// too (see Silence).
	silent atomic.Bool
	// delay holds back each piece of what the server sends by that long
	// (a time.Duration): a slow server or network.
	delay atomic.Int64
}

// NewProxy starts a proxy to the host:port of the URL dsn and returns it
// with dsn rewritten to go through it. It is closed when the test ends.
func NewProxy(t testing.TB, dsn string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: u.Host, up: true, conns: map[net.Conn]bool{}}
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
	})
	u.Host = ln.Addr().String()
	return p, u.String()
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		up := p.up
		p.mu.Unlock()
		if !up {
			c.Close()
			continue
		}
		go p.pipe(c)
	}
}

func (p *Proxy) pipe(c net.Conn) {
	s, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if !p.up {
		// Cut while this one was being dialled: a connection accepted
		// before it must not outlive it.
		p.mu.Unlock()
		c.Close()
		s.Close()
		return
	}
	p.conns[c], p.conns[s] = true, true
	p.mu.Unlock()
	go func() { io.Copy(requests{s, c, p}, c); s.Close() }()
	io.Copy(answers{c, &p.muted, &p.silent, &p.delay}, s)
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, s)
	p.mu.Unlock()
}

// answers writes the server's bytes to the client unless muted, each
// piece delay late.
type answers struct {
	net.Conn
	muted  *atomic.Bool
	silent *atomic.Bool
	delay  *atomic.Int64
}

func (a answers) Write(b []byte) (int, error) {
	if d := time.Duration(a.delay.Load()); d > 0 {
		time.Sleep(d)
	}
	if a.muted.Load() || a.silent.Load() {
		return len(b), nil
	}
	return a.Conn.Write(b)
}

// requests passes the client's bytes on (to Conn, the server's side),
// muting the answers once they carry the marker MuteOn set.
type requests struct {
	net.Conn
	client net.Conn
	p      *Proxy
}

func (r requests) Write(b []byte) (int, error) {
	if m := r.p.muteOn.Load(); m != nil && bytes.Contains(bytes.ToLower(b), *m) {
		r.p.muted.Store(true)
	}
	if m := r.p.cutOn.Load(); m != nil && bytes.Contains(bytes.ToLower(b), *m) && r.p.cutOn.CompareAndSwap(m, nil) {
		r.p.cuts.Add(1)
		// The client learns of the cut from its own connection, so that
		// one closes last: were it first, a retry could still find
		// another connection open and answering (a ping) and then see it
		// cut as well, which no server restart does.
		r.p.mu.Lock()
		if r.p.cutStays.Load() {
			r.p.up = false
		}
		for c := range r.p.conns {
			if c != r.client && c != r.Conn {
				c.Close()
			}
		}
		r.p.mu.Unlock()
		r.client.Close()
		return 0, net.ErrClosed
	}
	if r.p.silent.Load() {
		return len(b), nil
	}
	return r.Conn.Write(b)
}

// CutOn closes every connection through the proxy once a client sends
// marker (lower case: "begin", "commit", a statement's text), before the
// bytes carrying it reach the server, as when the server restarts at that
// instant. It fires once; new connections go through as before.
func (p *Proxy) CutOn(marker string) {
	p.cutStays.Store(false)
	m := []byte(marker)
	p.cutOn.Store(&m)
}

// GoneOn is CutOn that also refuses new connections from then on, as Cut
// does, until Restore: the server goes away for good at the step that
// sends marker.
func (p *Proxy) GoneOn(marker string) {
	p.cutStays.Store(true)
	m := []byte(marker)
	p.cutOn.Store(&m)
}

// MuteOn drops everything the server sends once a client has sent marker
// (lower case; "commit" for a transaction's end), until Cut: the statement
// still arrives and runs, so a commit happens while its client never
// learns of it, as when a server fails at that instant.
func (p *Proxy) MuteOn(marker string) {
	m := []byte(marker)
	p.muteOn.Store(&m)
}

// CutsOn is how many times CutOn has fired: a test whose marker was
// never sent proves nothing.
func (p *Proxy) CutsOn() int { return int(p.cuts.Load()) }

// Delay holds back each piece of what the server sends by d, on every
// connection, as a slow server or network would; 0 ends it.
func (p *Proxy) Delay(d time.Duration) { p.delay.Store(int64(d)) }

// Silence drops everything either side sends, on every connection and on
// new ones, which the proxy still accepts: a network that drops packets
// (a firewall's DROP, a cable pulled, a host gone), where no side learns
// the other is gone and a read waits for an answer that never comes.
// Restore ends it, closing the connections it garbled.
func (p *Proxy) Silence() { p.silent.Store(true) }

// Cut closes every connection through the proxy and refuses new ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = false
	p.muted.Store(false)
	p.muteOn.Store(nil)
	p.closeAllLocked()
}

// Reset closes every connection through the proxy, as a server restart
// does, and lets new ones through all along: Cut then Restore would
// refuse one made in between.
func (p *Proxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.muted.Store(false)
	p.muteOn.Store(nil)
	p.closeAllLocked()
}

func (p *Proxy) closeAllLocked() {
	for c := range p.conns {
		c.Close()
	}
}

// Restore lets connections through again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.up = true
	if p.silent.Swap(false) {
		p.closeAllLocked()
	}
}
