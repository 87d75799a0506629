package control

import (
	"sync"
	"time"
)

// lockout limits how fast admin tokens can be guessed, without ever
// refusing the right token because somebody else guessed wrong from the
// same address (a NAT, a load balancer in front of the admin listener).
//
// The choice it makes: a token is always compared, and a valid one always
// admitted, so the answer to a request that was checked says whether its
// token is right, locked out or not. A lockout therefore does not refuse
// the checked requests of a locked address; it rations the checks. While
// an address is locked out (maxFailures wrong tokens within
// failureWindow), its tokens are compared at most once per
// lockedCheckEvery; while the whole listener is (maxListenerFailures
// wrong tokens from all addresses together within failureWindow), so are
// those of every address that has not authenticated within goodFor
// without failing since. The rationed checks of all addresses together
// are at most lockedChecksPerSecond. A request over the ration is refused
// without its token being compared (429), so it tells nothing about the
// token and counts as no failure. An operator whose address is not locked
// out is never held up: while the listener is locked out, one whose
// address authenticated within the last hour is not either.
//
// A check counts from when it is admitted, not from when its token
// turns out wrong: until it is released, it is counted as a failure
// (in flight), so that guesses sent all at once are bounded as sequential
// ones are. Only the checks of an address that is trusted (authenticated
// within goodFor without failing since) are not counted in flight: an
// operator's parallel requests do not lock it out; its first wrong token
// ends that.
//
// So many addresses guess no faster than maxListenerFailures a minute
// plus lockedChecksPerSecond, however many they are and however many
// guesses they send at once; one address, after its first maxFailures,
// one guess per lockedCheckEvery. The price: an operator sharing a locked
// address with a guesser competes with the guesser for its ration, and
// one whose address has not authenticated yet has at most maxFailures
// requests checked at once.
type lockout struct {
	mu sync.Mutex
	// failures are each address's wrong tokens within failureWindow.
	failures map[string][]time.Time
	// all are the wrong tokens of every address within failureWindow,
	// the newest maxListenerFailures of them.
	all []time.Time
	// lastCheck is when a rationed check of an address was last made.
	lastCheck map[string]time.Time
	// good is when an address last authenticated.
	good map[string]time.Time
	// ration is the bucket of rationed checks for all addresses
	// together, refilled at lockedChecksPerSecond, as of rationAt.
	ration   float64
	rationAt time.Time
	// listenerLocked remembers that the listener's lockout began, so it
	// is reported once.
	listenerLocked bool
	// inFlight counts each address's admitted checks not yet released,
	// inFlightAll those of every address.
	inFlight    map[string]int
	inFlightAll int
}

const (
	// maxFailures wrong tokens from one address within failureWindow
	// lock the address out.
	maxFailures   = 10
	failureWindow = time.Minute
	// maxListenerFailures wrong tokens from all addresses together within
	// failureWindow lock the whole listener out.
	maxListenerFailures = 100
	// lockedCheckEvery is how often a locked address has a token
	// compared.
	lockedCheckEvery = 2 * time.Second
	// lockedChecksPerSecond bounds the compared tokens of all locked
	// addresses together.
	lockedChecksPerSecond = 5
	// goodFor is how long an address that authenticated stays clear of
	// the listener's lockout (not of its own).
	goodFor = time.Hour
	// maxAddresses bounds each map: past it, addresses with nothing
	// recent are forgotten, and if that is not enough, any (forget).
	maxAddresses = 10000
)

// admission is what the lockout decides about a token presented from an
// address: compare it, or refuse it unchecked.
type admission struct {
	// check: compare the token.
	check bool
	// retryAfter is when a refused request may come back.
	retryAfter time.Duration
	// listener: the refusal is the listener's lockout, not the address's.
	listener bool
	// inFlight: the check is counted in flight until release.
	inFlight bool
}

// admit decides whether a token presented from addr is compared now. A
// check it admits must be released once its token was compared (after
// failed, if it was wrong).
func (l *lockout) admit(addr string, now time.Time) admission {
	l.mu.Lock()
	defer l.mu.Unlock()
	trusted := l.trusted(addr, now)
	addrLocked := len(l.recent(addr, now))+l.inFlight[addr] >= maxFailures
	listenerLocked := l.listenerCount(now)+l.inFlightAll >= maxListenerFailures
	if !addrLocked && !(listenerLocked && !trusted) {
		return l.reserve(addr, trusted)
	}
	if last, ok := l.lastCheck[addr]; ok && now.Sub(last) < lockedCheckEvery {
		return admission{retryAfter: lockedCheckEvery - now.Sub(last), listener: !addrLocked}
	}
	l.refill(now)
	if l.ration < 1 {
		return admission{retryAfter: time.Second, listener: !addrLocked}
	}
	l.ration--
	if l.lastCheck == nil {
		l.lastCheck = map[string]time.Time{}
	}
	l.lastCheck[addr] = now
	l.forget(now)
	return l.reserve(addr, trusted)
}

// reserve admits a check from addr, counting it in flight unless addr is
// trusted.
func (l *lockout) reserve(addr string, trusted bool) admission {
	if trusted {
		return admission{check: true}
	}
	if l.inFlight == nil {
		l.inFlight = map[string]int{}
	}
	l.inFlight[addr]++
	l.inFlightAll++
	return admission{check: true, inFlight: true}
}

// release ends the check a admitted from addr: it is no longer counted in
// flight (a wrong token was counted by failed before).
func (l *lockout) release(addr string, a admission) {
	if !a.inFlight {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inFlightAll--
	if l.inFlight[addr]--; l.inFlight[addr] <= 0 {
		delete(l.inFlight, addr)
	}
}

// failed records a wrong token from addr; it reports whether this one
// locked addr out, and whether it locked the listener out.
func (l *lockout) failed(addr string, now time.Time) (addrLocked, listenerLocked bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.failures == nil {
		l.failures = map[string][]time.Time{}
	}
	l.failures[addr] = append(l.recent(addr, now), now)
	addrLocked = len(l.failures[addr]) == maxFailures
	l.listenerCount(now)
	l.all = append(l.all, now)
	if len(l.all) > maxListenerFailures {
		l.all = l.all[len(l.all)-maxListenerFailures:]
	}
	if len(l.all) >= maxListenerFailures && !l.listenerLocked {
		l.listenerLocked, listenerLocked = true, true
	}
	l.forget(now)
	return addrLocked, listenerLocked
}

// succeeded records that addr presented a valid token.
func (l *lockout) succeeded(addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.good == nil {
		l.good = map[string]time.Time{}
	}
	l.good[addr] = now
	l.forget(now)
}

// trusted: addr authenticated within goodFor and has not failed since.
func (l *lockout) trusted(addr string, now time.Time) bool {
	at, ok := l.good[addr]
	if !ok || now.Sub(at) > goodFor {
		return false
	}
	for _, f := range l.failures[addr] {
		if !f.Before(at) {
			return false
		}
	}
	return true
}

// listenerCount drops the listener's failures older than the window and
// counts the rest; below maxListenerFailures the lockout has ended.
func (l *lockout) listenerCount(now time.Time) int {
	i := 0
	for i < len(l.all) && now.Sub(l.all[i]) > failureWindow {
		i++
	}
	l.all = l.all[i:]
	if len(l.all) < maxListenerFailures {
		l.listenerLocked = false
	}
	return len(l.all)
}

// refill tops up the ration of checks for the time since the last one.
func (l *lockout) refill(now time.Time) {
	if l.rationAt.IsZero() {
		l.ration = lockedChecksPerSecond
	} else if d := now.Sub(l.rationAt); d > 0 {
		l.ration = min(lockedChecksPerSecond, l.ration+d.Seconds()*lockedChecksPerSecond)
	}
	l.rationAt = now
}

// recent drops addr's failures older than the window and returns the rest.
func (l *lockout) recent(addr string, now time.Time) []time.Time {
	list := l.failures[addr]
	i := 0
	for i < len(list) && now.Sub(list[i]) > failureWindow {
		i++
	}
	list = list[i:]
	if len(list) == 0 {
		delete(l.failures, addr)
	} else {
		l.failures[addr] = list
	}
	return list
}

// forget drops addresses with nothing recent once a map grows past
// maxAddresses, so that many addresses cannot grow it without bound; and
// since all may be recent (many trusted addresses failing once each, or
// many addresses behind a trusted proxy), then any more down
// to three quarters of maxAddresses, so that the next scan (under the
// lock) is a quarter of maxAddresses new addresses away. An address
// forgotten so loses its own lockout, not the listener's: that many
// failures lock the listener.
func (l *lockout) forget(now time.Time) {
	if len(l.failures) > maxAddresses {
		for a := range l.failures {
			l.recent(a, now)
		}
		shrink(l.failures)
	}
	if len(l.lastCheck) > maxAddresses {
		for a, at := range l.lastCheck {
			if now.Sub(at) >= lockedCheckEvery {
				delete(l.lastCheck, a)
			}
		}
		shrink(l.lastCheck)
	}
	if len(l.good) > maxAddresses {
		for a, at := range l.good {
			if now.Sub(at) > goodFor {
				delete(l.good, a)
			}
		}
		shrink(l.good)
	}
}

// shrink deletes arbitrary addresses from m until it holds three quarters
// of maxAddresses.
func shrink[V any](m map[string]V) {
	for a := range m {
		if len(m) <= maxAddresses*3/4 {
			return
		}
		delete(m, a)
	}
}
