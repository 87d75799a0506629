package control

import (
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"strangler/config"
)

// fromAddress is a client whose connections come from the loopback
// address ip (any of 127.0.0.0/8), as if from another machine.
func fromAddress(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

func (p *plane) callFrom(t *testing.T, c *http.Client, token string) int {
	t.Helper()
	req, err := http.NewRequest("GET", p.URL+"/admin/routes", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestManyAddressesCannotGuessFreely: wrong tokens from many addresses,
// none of them over its own limit, lock the whole listener out: from
// then on tokens from addresses that have not authenticated are compared
// at a rationed rate, however many addresses there are, while an
// operator whose address authenticated before keeps working.
func TestManyAddressesCannotGuessFreely(t *testing.T) {
	p := newPlane(t)
	operator := fromAddress("127.0.0.2")
	if got := p.callFrom(t, operator, bobToken); got != http.StatusOK {
		t.Fatalf("bob before any guess: got %d, want 200", got)
	}
	const addresses = 40
	clients := make([]*http.Client, addresses)
	for i := range clients {
		clients[i] = fromAddress(fmt.Sprintf("127.0.1.%d", i+1))
	}
	compared := 0
	for round := range 2 * maxFailures {
		for i, c := range clients {
			switch got := p.callFrom(t, c, fmt.Sprintf("guess-%04d-%04d-xxxxxxxx", round, i)); got {
			case http.StatusUnauthorized:
				compared++
			case http.StatusTooManyRequests:
			default:
				t.Fatalf("a guess got %d", got)
			}
		}
	}
	// 800 guesses in no time: the listener's limit, then the ration's
	// burst.
	if compared > maxListenerFailures+lockedChecksPerSecond {
		t.Errorf("%d of %d guesses were compared, want at most %d", compared, 2*maxFailures*addresses, maxListenerFailures+lockedChecksPerSecond)
	}
	if got := labelled(t, p.reg, "strangler_admin_lockouts_total", "scope", "listener"); got != 1 {
		t.Errorf("strangler_admin_lockouts_total{scope=listener} = %v, want 1", got)
	}
	if got := p.callFrom(t, operator, bobToken); got != http.StatusOK {
		t.Errorf("bob, whose address authenticated before, during the lockout: got %d, want 200", got)
	}
	if got := p.callFrom(t, fromAddress("127.0.0.3"), aliceToken); got != http.StatusTooManyRequests {
		t.Errorf("alice from a new address while the ration is spent: got %d, want 429", got)
	}
	p.clock.Advance(time.Second)
	if got := p.callFrom(t, fromAddress("127.0.0.3"), aliceToken); got != http.StatusOK {
		t.Errorf("alice from a new address once the ration refilled: got %d, want 200", got)
	}
	p.clock.Advance(failureWindow + time.Second)
	if got := p.callFrom(t, clients[0], "guess-after-the-window-xx"); got != http.StatusUnauthorized {
		t.Errorf("a guess after the window: got %d, want 401 (the lockout ended)", got)
	}
}

// TestLockoutRationsChecksOverTime: once locked, an address gets one
// compared token per lockedCheckEvery, all locked addresses together
// lockedChecksPerSecond; the rest are refused unchecked.
func TestLockoutRationsChecksOverTime(t *testing.T) {
	var l lockout
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for range maxFailures {
		if !checkNow(&l, "10.0.0.1", now).check {
			t.Fatal("a guess below the limit was not compared")
		}
		l.failed("10.0.0.1", now)
	}
	checks := 0
	for i := range 600 { // ten requests a second for a minute
		at := now.Add(time.Duration(i) * 100 * time.Millisecond)
		if a := checkNow(&l, "10.0.0.1", at); a.check {
			checks++
			l.failed("10.0.0.1", at)
		} else if a.retryAfter <= 0 || a.listener {
			t.Fatalf("a refusal %+v without a retry time, or blamed on the listener", a)
		}
	}
	if want := int(time.Minute / lockedCheckEvery); checks != want {
		t.Errorf("a locked address had %d tokens compared in a minute, want %d", checks, want)
	}
	if !checkNow(&l, "10.0.0.2", now.Add(time.Minute)).check {
		t.Error("another address, with no failure, was rationed")
	}
}

func TestTheClientBehindATrustedProxyIsTheAddressItSaw(t *testing.T) {
	p := &Proxies{}
	var lb, lan config.Prefix
	if err := lb.UnmarshalText([]byte("192.0.2.10")); err != nil {
		t.Fatal(err)
	}
	if err := lan.UnmarshalText([]byte("10.0.0.0/8")); err != nil {
		t.Fatal(err)
	}
	p.Set([]config.Prefix{lb, lan})
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"a peer that is no proxy, whatever it says", "198.51.100.7:5000", []string{"203.0.113.1"}, "198.51.100.7"},
		{"the client the load balancer saw", "192.0.2.10:5000", []string{"203.0.113.1"}, "203.0.113.1"},
		{"past a chain of trusted proxies", "192.0.2.10:5000", []string{"203.0.113.1, 10.1.2.3"}, "203.0.113.1"},
		{"never what the client wrote before it", "192.0.2.10:5000", []string{"10.9.9.9, 203.0.113.1"}, "203.0.113.1"},
		{"in several header lines", "192.0.2.10:5000", []string{"6.6.6.6", "203.0.113.1, 10.1.2.3"}, "203.0.113.1"},
		{"the proxy itself when what it passed on is no address", "192.0.2.10:5000", []string{"203.0.113.1, unknown"}, "192.0.2.10"},
		{"the proxy itself without the header", "192.0.2.10:5000", nil, "192.0.2.10"},
		{"every hop trusted: the left-most", "192.0.2.10:5000", []string{"10.0.0.1, 10.0.0.2"}, "10.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.peer, Header: http.Header{"X-Forwarded-For": tc.xff}}
			if got := p.client(r); got != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
	if got := (*Proxies)(nil).client(&http.Request{RemoteAddr: "192.0.2.10:5000", Header: http.Header{"X-Forwarded-For": {"203.0.113.1"}}}); got != "192.0.2.10" {
		t.Errorf("without proxies: got %s, want the peer", got)
	}
}

// TestBehindALoadBalancerAGuesserLocksOutOnlyItself: with the load
// balancer in admin.trusted_proxies, a guesser's wrong tokens lock out
// its own address, as the balancer saw it, and an operator behind the
// same balancer is not rationed at all.
func TestBehindALoadBalancerAGuesserLocksOutOnlyItself(t *testing.T) {
	p := newPlane(t)
	var lb config.Prefix
	if err := lb.UnmarshalText([]byte("127.0.0.0/8")); err != nil {
		t.Fatal(err)
	}
	p.proxies.Set([]config.Prefix{lb})
	guesser, operator := []string{"X-Forwarded-For", "203.0.113.66"}, []string{"X-Forwarded-For", "198.51.100.20"}
	for range maxFailures + 2 {
		p.call(t, "GET", "/admin/routes", "guess-0123456789abcdef", "", guesser...)
	}
	for i := range 5 {
		if resp, _ := p.call(t, "GET", "/admin/routes", aliceToken, "", operator...); resp.StatusCode != http.StatusOK {
			t.Errorf("alice's call %d behind the same balancer: got %d, want 200", i+1, resp.StatusCode)
		}
	}
	if resp, _ := p.call(t, "GET", "/admin/routes", "guess-0123456789abcdef", "", "X-Forwarded-For", "198.51.100.20, 203.0.113.66"); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("the guesser claiming alice's address: got %d, want 429", resp.StatusCode)
	}
	events := p.logs.matching(t, "security")
	if e := events[len(events)-1]; e["remote_addr"] != "203.0.113.66" {
		t.Errorf("the security line names %v, want the guesser's address as the balancer saw it", e["remote_addr"])
	}
}

// TestTheLockoutsMapsStayBoundedWithinAMinute: addresses that are all
// recent cannot grow the lockout's maps past maxAddresses: twice as many
// failing within a minute (trusted addresses' checks are not counted in
// flight, so each can fail once however many there are), and as many
// addresses authenticating within the hour (clients behind a trusted
// proxy).
func TestTheLockoutsMapsStayBoundedWithinAMinute(t *testing.T) {
	var l lockout
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	addr := func(i int) string { return fmt.Sprintf("2001:db8::%x", i) }
	const n = 2 * maxAddresses
	for i := range n {
		l.failed(addr(i), now.Add(time.Duration(i)*time.Millisecond))
		l.succeeded(addr(n+i), now.Add(time.Duration(i)*time.Millisecond))
		if len(l.failures) > maxAddresses || len(l.good) > maxAddresses {
			t.Fatalf("after %d addresses, %d with failures and %d good are kept, want at most %d each", i+1, len(l.failures), len(l.good), maxAddresses)
		}
	}
	if !l.listenerLocked {
		t.Error("twice maxAddresses failures within a minute did not lock the listener out")
	}
}

// TestTheLockoutKeepsTheREADMEsFigures pins the figures the README
// promises, written out rather than read from the constants that
// implement them: ten wrong tokens from one address within a minute lock
// it out, a hundred from all addresses lock the listener, a locked
// address has a token compared at most once every 2 seconds, at most 5 a
// second over all addresses, and an address that logged in within the
// hour is not held back by the listener's lockout.
func TestTheLockoutKeepsTheREADMEsFigures(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	// locked reports whether addr is rationed at now: of two tokens at
	// the same instant, an address that is not locked has both compared.
	locked := func(l *lockout, addr string, now time.Time) bool {
		first := checkNow(l, addr, now).check
		second := checkNow(l, addr, now).check
		return !first || !second
	}
	fail := func(l *lockout, addr string, n int, at time.Time) {
		for range n {
			l.failed(addr, at)
		}
	}
	t.Run("nine wrong tokens from one address do not lock it out, ten do", func(t *testing.T) {
		var l lockout
		fail(&l, "10.0.0.1", 9, t0)
		if locked(&l, "10.0.0.1", t0) {
			t.Error("locked out after 9 wrong tokens, want after 10")
		}
		fail(&l, "10.0.0.1", 1, t0)
		if !locked(&l, "10.0.0.1", t0) {
			t.Error("not locked out after 10 wrong tokens")
		}
	})
	t.Run("the wrong tokens count within a minute", func(t *testing.T) {
		var l lockout
		fail(&l, "10.0.0.1", 10, t0)
		if !locked(&l, "10.0.0.1", t0.Add(59*time.Second)) {
			t.Error("not locked out 59s after 10 wrong tokens")
		}
		if locked(&l, "10.0.0.1", t0.Add(61*time.Second)) {
			t.Error("still locked out 61s after 10 wrong tokens, want the lockout over after a minute")
		}
	})
	t.Run("a locked address has a token compared once every 2 seconds", func(t *testing.T) {
		var l lockout
		fail(&l, "10.0.0.1", 10, t0)
		if !checkNow(&l, "10.0.0.1", t0).check {
			t.Fatal("the first token after the lockout began was not compared")
		}
		if a := checkNow(&l, "10.0.0.1", t0.Add(1900*time.Millisecond)); a.check || a.retryAfter != 100*time.Millisecond {
			t.Errorf("1.9s later: %+v, want refused with 100ms to wait", a)
		}
		if !checkNow(&l, "10.0.0.1", t0.Add(2*time.Second)).check {
			t.Error("2s later the token was not compared")
		}
	})
	t.Run("ninety-nine wrong tokens over all addresses do not lock the listener, a hundred do", func(t *testing.T) {
		var l lockout
		for i := range 99 {
			l.failed(fmt.Sprintf("10.1.0.%d", i), t0)
		}
		if locked(&l, "10.2.0.1", t0) {
			t.Error("the listener locked after 99 wrong tokens, want after 100")
		}
		l.failed("10.1.1.1", t0)
		if !locked(&l, "10.2.0.2", t0) {
			t.Error("the listener is not locked after 100 wrong tokens")
		}
	})
	t.Run("a locked listener compares at most 5 tokens a second", func(t *testing.T) {
		var l lockout
		for i := range 100 {
			l.failed(fmt.Sprintf("10.1.0.%d", i), t0)
		}
		compared := 0
		for i := range 20 {
			if checkNow(&l, fmt.Sprintf("10.2.0.%d", i), t0).check {
				compared++
			}
		}
		if compared != 5 {
			t.Errorf("%d of 20 new addresses had a token compared in the same second, want 5", compared)
		}
	})
	t.Run("an address that logged in within the hour passes a locked listener", func(t *testing.T) {
		for _, c := range []struct {
			ago    time.Duration
			passes bool
		}{{59 * time.Minute, true}, {61 * time.Minute, false}} {
			var l lockout
			l.succeeded("10.0.0.9", t0.Add(-c.ago))
			for i := range 100 {
				l.failed(fmt.Sprintf("10.1.0.%d", i), t0)
			}
			if got := !locked(&l, "10.0.0.9", t0); got != c.passes {
				t.Errorf("logged in %v before the listener locked: passes %v, want %v", c.ago, got, c.passes)
			}
		}
	})
}

// TestConcurrentGuessesAreBoundedAsSequentialOnesAre: guesses sent all at
// once, from many addresses or from one, have no more tokens compared
// than the same guesses sent one after another: a check counts from when
// it is admitted, not from when its token turned out wrong. The log
// output is slow, so that the wrong guesses are all in flight together
// (compared, not yet released), as they are when the listener is slow.
func TestConcurrentGuessesAreBoundedAsSequentialOnesAre(t *testing.T) {
	// burst sends one guess from each client at once and counts the
	// guesses compared (401) and those refused unchecked (429).
	burst := func(t *testing.T, p *plane, clients []*http.Client) (compared int) {
		t.Helper()
		p.logs.slow.Store(int64(5 * time.Millisecond))
		defer func() {
			n := 0
			for _, line := range p.logs.matching(t, "security") {
				if line["reason"] == "invalid_token" {
					n++
				}
			}
			if n != compared {
				t.Errorf("%d wrong tokens logged, %d guesses answered 401", n, compared)
			}
		}()
		start := make(chan struct{})
		codes := make(chan int, len(clients))
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() {
				<-start
				codes <- p.callFrom(t, c, fmt.Sprintf("guess-%04d-xxxxxxxxxxxxxxxx", i))
			})
		}
		close(start)
		wg.Wait()
		close(codes)
		for code := range codes {
			switch code {
			case http.StatusUnauthorized:
				compared++
			case http.StatusTooManyRequests:
			default:
				t.Fatalf("a guess got %d", code)
			}
		}
		return compared
	}
	t.Run("500 at once from 250 addresses", func(t *testing.T) {
		p := newPlane(t)
		var clients []*http.Client
		for i := range 500 {
			clients = append(clients, fromAddress(fmt.Sprintf("127.0.3.%d", i%250+1)))
		}
		got, limit := burst(t, p, clients), maxListenerFailures+lockedChecksPerSecond
		if got > limit {
			t.Errorf("%d of 500 concurrent guesses were compared, want at most %d", got, limit)
		}
		t.Logf("%d of 500 concurrent guesses were compared", got)
		if got := p.callFrom(t, fromAddress("127.0.0.2"), bobToken); got != http.StatusTooManyRequests {
			t.Errorf("bob from a new address during the listener's lockout: got %d, want 429 (nothing left in flight)", got)
		}
	})
	t.Run("100 at once from one address", func(t *testing.T) {
		p := newPlane(t)
		var clients []*http.Client
		for range 100 {
			clients = append(clients, fromAddress("127.0.4.1"))
		}
		if got, limit := burst(t, p, clients), maxFailures+1; got > limit {
			t.Errorf("%d of 100 concurrent guesses from one address were compared, want at most %d", got, limit)
		}
	})
}

// checkNow admits a check from addr and releases it at once, as a
// sequential request does before the next one.
func checkNow(l *lockout, addr string, now time.Time) admission {
	a := l.admit(addr, now)
	if a.check {
		l.release(addr, a)
	}
	return a
}

// TestAnOperatorsParallelChecksAreNotCountedInFlight: once an address
// authenticated, its checks are not counted in flight, so an operator's
// 50 requests at once, all compared before any is released, all pass.
func TestAnOperatorsParallelChecksAreNotCountedInFlight(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	var l lockout
	l.succeeded("127.0.4.2", t0)
	for i := range 50 {
		if a := l.admit("127.0.4.2", t0); !a.check {
			t.Fatalf("the operator's check %d of 50 in flight at once was refused: %+v", i+1, a)
		}
	}
	// An address that never authenticated: its checks in flight count
	// (and past maxFailures of them it has one a lockedCheckEvery).
	admitted := 0
	for range 50 {
		if l.admit("127.0.4.3", t0).check {
			admitted++
		}
	}
	if admitted != maxFailures+1 {
		t.Errorf("an address that never authenticated had %d of 50 checks at once admitted, want %d", admitted, maxFailures+1)
	}
}
