package shadow

import (
	"hash/maphash"

	"strangler/phi"
)

// An API's field names come in its answers whatever the request asked
// for; a key that is data (a surname, a record number) comes only with
// the request that named it: GET /patients/MRN-1 answers
// {"MRN-1": {…}}, however often it is asked, and ?surname=smith&page=N
// answers {"smith": […]} on every page. So a key is stored only once it
// came in answers to requests that differed in every parameter (path
// parameter or query value) the route's requests
// ever sent. A route whose requests never carried a parameter has
// nothing to tell keys by: its keys are judged by their shape alone.

// Asked is the request an answer was to, as schema learning reads it:
// the route's pattern and the request's path and query.
type Asked struct {
	Pattern string
	// Target is the path and query: /patients/42?full=1.
	Target string
}

// maxParamSlots is how many distinct parameters (a path segment, a query
// name) a route tells keys by; further ones are not looked at.
const maxParamSlots = 64

// slotKey names a parameter: a path segment by its index, a query value
// by its name.
type slotKey struct {
	segment int
	name    string
}

// absent is the value of a parameter a request did not carry; a value
// carried hashes to an odd number, never to it.
const absent = 0

// variation is what one place (a route, an object member) saw of the
// parameters of the requests whose answers reached it. It lives in a
// replica's memory only: it is never stored, and it holds no value, only
// hashes under a seed drawn per process.
type variation struct {
	seen bool
	// first is the value of each parameter slot in the first request
	// seen; slots the route met later were absent from it.
	first []uint64
	// varied has bit i set once slot i took a value other than its first.
	varied uint64
}

// see counts a request with the values vals, by slot.
func (v *variation) see(vals []uint64) {
	if !v.seen {
		v.seen, v.first = true, append(v.first[:0], vals...)
		return
	}
	for i, h := range vals {
		if v.firstAt(i) != h {
			v.varied |= 1 << i
		}
	}
}

func (v *variation) firstAt(i int) uint64 {
	if i < len(v.first) {
		return v.first[i]
	}
	return absent
}

// merge adds what o saw to v; both count the slots of one route.
func (v *variation) merge(o *variation) {
	if o == nil || !o.seen {
		return
	}
	if !v.seen {
		*v = variation{seen: true, first: append([]uint64(nil), o.first...), varied: o.varied}
		return
	}
	v.varied |= o.varied
	for i := range max(len(v.first), len(o.first)) {
		if v.firstAt(i) != o.firstAt(i) {
			v.varied |= 1 << i
		}
	}
}

// clone returns a copy of v that shares nothing with it.
func (v *variation) clone() *variation {
	if v == nil {
		return nil
	}
	c := *v
	c.first = append([]uint64(nil), v.first...)
	return &c
}

// tells reports whether a key whose answers saw v may be stored on a
// route whose requests carried slots parameters: none (nothing to tell
// by), or the key came with requests that differed in each of them. A
// key seen only with one request, or only with one value of one
// parameter, is not; nor, on a route whose requests all give one
// parameter the same value, is any key.
func (v *variation) tells(slots int) bool {
	if slots == 0 {
		return true
	}
	all := uint64(1)<<slots - 1
	if slots == 64 {
		all = ^uint64(0)
	}
	return v != nil && v.varied&all == all
}

// routeParams are a route's parameter slots.
type routeParams struct {
	seed  maphash.Seed
	slots map[slotKey]int
	// vals is the last request's values, by slot.
	vals []uint64
}

func newRouteParams() *routeParams {
	return &routeParams{seed: maphash.MakeSeed(), slots: map[slotKey]int{}}
}

// values returns the request's value of each slot; valid until the next
// call.
func (p *routeParams) values(a Asked) []uint64 {
	params := phi.Params(a.Pattern, a.Target)
	for _, pr := range params {
		k := slotKey{segment: pr.Segment, name: pr.Name}
		if pr.Segment >= 0 {
			k.name = ""
		}
		if _, ok := p.slots[k]; !ok && len(p.slots) < maxParamSlots {
			p.slots[k] = len(p.slots)
		}
	}
	p.vals = p.vals[:0]
	for range p.slots {
		p.vals = append(p.vals, absent)
	}
	for _, pr := range params {
		k := slotKey{segment: pr.Segment, name: pr.Name}
		if pr.Segment >= 0 {
			k.name = ""
		}
		if i, ok := p.slots[k]; ok {
			p.vals[i] = maphash.String(p.seed, pr.Value) | 1
		}
	}
	return p.vals
}
