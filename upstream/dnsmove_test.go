package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"

	"strangler/internal/testkit"
)

// nameServer is a DNS server on loopback that answers A queries for any
// name with the addresses set last, or, failing, with SERVFAIL.
type nameServer struct {
	mu    sync.Mutex
	addrs []netip.Addr
	fail  dnsmessage.RCode // answered instead when not RCodeSuccess
}

func (s *nameServer) set(addrs ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addrs = s.addrs[:0]
	for _, a := range addrs {
		s.addrs = append(s.addrs, netip.MustParseAddr(a))
	}
	s.fail = dnsmessage.RCodeSuccess
}

// failing has every query answered with rcode.
func (s *nameServer) failing(rcode dnsmessage.RCode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = rcode
}

// newNameServer starts a name server and returns it with a resolver that
// asks it alone.
func newNameServer(t *testing.T) (*nameServer, *net.Resolver) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	s := &nameServer{}
	go func() {
		buf := make([]byte, 512)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if answer := s.answer(buf[:n]); answer != nil {
				pc.WriteTo(answer, from)
			}
		}
	}()
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
	return s, r
}

func (s *nameServer) answer(query []byte) []byte {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h.Response, h.Authoritative, h.RecursionAvailable = true, true, true
	h.RCode = s.fail
	b := dnsmessage.NewBuilder(nil, h)
	b.StartQuestions()
	b.Question(q)
	b.StartAnswers()
	if s.fail == dnsmessage.RCodeSuccess && q.Type == dnsmessage.TypeA {
		for _, a := range s.addrs {
			b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}, dnsmessage.AResource{A: a.As4()})
		}
	}
	out, _ := b.Finish()
	return out
}

// sameHostBackends starts a backend on each of ips, all on one port, each
// answering with its own address, and returns the port. With tlsConfig
// not nil they serve https (HTTP/2 too) and it is set to trust them.
func sameHostBackends(t *testing.T, tlsConfig *tls.Config, ips ...string) string {
	t.Helper()
	for attempt := 0; ; attempt++ {
		var lns []net.Listener
		port := "0"
		for _, ip := range ips {
			ln, err := net.Listen("tcp", net.JoinHostPort(ip, port))
			if err != nil {
				break
			}
			lns = append(lns, ln)
			_, port, _ = net.SplitHostPort(ln.Addr().String())
		}
		if len(lns) < len(ips) {
			for _, ln := range lns {
				ln.Close()
			}
			if attempt == 10 {
				t.Fatalf("no port free on all of %v", ips)
			}
			continue // the port was taken on another address
		}
		for i, ln := range lns {
			ip := ips[i]
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				io.WriteString(w, ip)
			}))
			srv.Listener.Close()
			srv.Listener = ln
			if tlsConfig != nil {
				srv.EnableHTTP2 = true
				srv.StartTLS()
				pool := x509.NewCertPool()
				pool.AddCert(srv.Certificate())
				tlsConfig.RootCAs, tlsConfig.ServerName = pool, "example.com"
			} else {
				srv.Start()
			}
			t.Cleanup(srv.Close)
		}
		return port
	}
}

// answeredBy sends a GET and returns which backend answered, or "" and
// the error.
func answeredBy(t *testing.T, u *Upstream) (string, error) {
	t.Helper()
	resp, err := get(t, u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// A backend moved by DNS under steady traffic: the pooled connection to the
// old address is never idle long enough for the idle timeout to close it,
// so before connections had a maximum age every request went on reaching
// the old address for as long as traffic went on.
func TestNameMovedUnderSteadyTrafficIsFollowed(t *testing.T) {
	ns, resolver := newNameServer(t)
	port := sameHostBackends(t, nil, "127.0.0.2", "127.0.0.3")
	ns.set("127.0.0.2")
	u := New("legacy", Config{URL: mustURL(t, "http://backend.test:"+port), Timeout: 5 * time.Second,
		MaxConnAge: 300 * time.Millisecond, Resolver: resolver})
	followsMove(t, ns, u)
}

// So through the transport, to an https backend speaking HTTP/2, whose
// one connection carries every request.
func TestNameMovedIsFollowedOverHTTP2(t *testing.T) {
	ns, resolver := newNameServer(t)
	tlsConfig := &tls.Config{}
	port := sameHostBackends(t, tlsConfig, "127.0.0.2", "127.0.0.3")
	ns.set("127.0.0.2")
	u := New("legacy", Config{URL: mustURL(t, "https://backend.test:"+port), Timeout: 5 * time.Second,
		MaxConnAge: 300 * time.Millisecond, Resolver: resolver, TLS: tlsConfig})
	resp, err := get(t, u)
	if err != nil || resp.ProtoMajor != 2 {
		t.Fatalf("not HTTP/2: %v, %v", resp, err)
	}
	resp.Body.Close()
	followsMove(t, ns, u)
}

// followsMove moves the name ns answers for from 127.0.0.2 to 127.0.0.3
// under steady traffic through u, and checks that requests reach the new
// address soon and the old one no more.
func followsMove(t *testing.T, ns *nameServer, u *Upstream) {
	t.Helper()
	if by, err := answeredBy(t, u); err != nil || by != "127.0.0.2" {
		t.Fatalf("before the move: answered by %q, %v", by, err)
	}
	ns.set("127.0.0.3") // the blue/green switch
	old := 0
	testkit.Eventually(t, 30*time.Second, "a request reaching the new address", func() bool {
		by, err := answeredBy(t, u)
		if err != nil {
			t.Fatalf("during the move: %v", err)
		}
		if by == "127.0.0.2" {
			old++
		}
		return by == "127.0.0.3"
	})
	t.Logf("%d requests reached the old address after the switch", old)
	for i := range 20 {
		if by, err := answeredBy(t, u); err != nil || by != "127.0.0.3" {
			t.Fatalf("request %d after the move was followed: answered by %q, %v", i, by, err)
		}
	}
}

// A name that stops resolving (the resolver fails, or says the name does
// not exist) while the backend still answers at its address: new
// connections, which max_connection_age makes sure come, go to the
// address the last one reached, rather than every request failing.
func TestNameThatStopsResolvingKeepsItsLastAddress(t *testing.T) {
	for _, rcode := range []dnsmessage.RCode{dnsmessage.RCodeServerFailure, dnsmessage.RCodeNameError} {
		t.Run(rcode.String(), func(t *testing.T) {
			ns, resolver := newNameServer(t)
			port := sameHostBackends(t, nil, "127.0.0.2")
			ns.set("127.0.0.2")
			u := New("legacy", Config{URL: mustURL(t, "http://backend.test:"+port), Timeout: 5 * time.Second, Resolver: resolver})
			if by, err := answeredBy(t, u); err != nil || by != "127.0.0.2" {
				t.Fatalf("resolving: answered by %q, %v", by, err)
			}
			ns.failing(rcode)
			for i := range 3 {
				u.CloseIdleConnections() // as max_connection_age does
				if by, err := answeredBy(t, u); err != nil || by != "127.0.0.2" {
					t.Fatalf("request %d with the name not resolving: answered by %q, %v", i, by, err)
				}
			}
		})
	}
	// A name never resolved has no last address: the dial fails.
	ns, resolver := newNameServer(t)
	ns.failing(dnsmessage.RCodeNameError)
	u := New("legacy", Config{URL: mustURL(t, "http://backend.test:80"), Timeout: 5 * time.Second, Resolver: resolver})
	if by, err := answeredBy(t, u); err == nil {
		t.Fatalf("a name never resolved: answered by %q", by)
	}
}

// Of a name with several addresses, connections go to the first that
// accepts one, in the order the resolver gave: to the next when the first
// refuses, and not spread over them.
func TestNameWithSeveralAddressesUsesTheFirstThatAccepts(t *testing.T) {
	ns, resolver := newNameServer(t)
	port := sameHostBackends(t, nil, "127.0.0.2", "127.0.0.3")
	u := New("legacy", Config{URL: mustURL(t, "http://backend.test:"+port), Timeout: 5 * time.Second, Resolver: resolver})
	for _, tc := range []struct {
		addrs []string
		want  string
	}{
		{[]string{"127.0.0.2", "127.0.0.3"}, "127.0.0.2"},
		{[]string{"127.0.0.3", "127.0.0.2"}, "127.0.0.3"},
		{[]string{"127.0.0.9", "127.0.0.3"}, "127.0.0.3"}, // nothing listens on 127.0.0.9
	} {
		ns.set(tc.addrs...)
		for i := range 5 {
			u.CloseIdleConnections()
			if by, err := answeredBy(t, u); err != nil || by != tc.want {
				t.Fatalf("%v, request %d: answered by %q, %v; want %s", tc.addrs, i, by, err, tc.want)
			}
		}
	}
}

// An exchange on a connection that passes its maximum age is never cut:
// a streamed answer goes on to its end while other requests, which close
// or sweep aged connections, come and go; only then is the connection
// closed.
func TestAnExchangePastTheMaxAgeIsNotCut(t *testing.T) {
	for _, https := range []bool{false, true} {
		t.Run(map[bool]string{false: "direct", true: "HTTP/2"}[https], func(t *testing.T) {
			release := make(chan struct{})
			var n atomic.Int64
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if n.Add(1) > 1 {
					io.WriteString(w, "other")
					return
				}
				io.WriteString(w, "first part;")
				w.(http.Flusher).Flush()
				<-release
				io.WriteString(w, "second part")
			}))
			c := Config{Timeout: 5 * time.Second, MaxConnAge: time.Nanosecond}
			if https {
				srv.EnableHTTP2 = true
				srv.StartTLS()
				c.TLS = srv.Client().Transport.(*http.Transport).TLSClientConfig
			} else {
				srv.Start()
			}
			t.Cleanup(srv.Close)
			c.URL = mustURL(t, srv.URL)
			u := New("legacy", c)
			resp, err := get(t, u)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if https && resp.ProtoMajor != 2 {
				t.Fatalf("not HTTP/2: %s", resp.Proto)
			}
			first := make([]byte, len("first part;"))
			if _, err := io.ReadFull(resp.Body, first); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if by, err := answeredBy(t, u); err != nil || by != "other" {
					t.Fatalf("a request while the stream is open: %q, %v", by, err)
				}
			}
			close(release)
			rest, err := io.ReadAll(resp.Body)
			if err != nil || string(rest) != "second part" {
				t.Fatalf("the stream's end: %q, %v", rest, err)
			}
		})
	}
}
