package router

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// replayBudget bounds the bytes of request bodies buffered for replay at
// once (replay_budget), over every route and every table a reload swaps
// in: max_replay_body bounds one body, and without this nothing bounded
// how many (found by the red team: a thousand clients each sending a body
// of max_replay_body at once to a dual-write route made the facade hold
// 10 GiB). A body is charged as its buffer grows, before the memory is
// taken; a request whose buffer would pass the budget is refused (503,
// Retry-After) before any backend sees a byte of it, as Envoy's overload
// manager sheds load, and what was admitted before it is served as ever.
type replayBudget struct {
	limit atomic.Int64
	used  atomic.Int64
	// gauge shows used; nil without metrics.
	gauge prometheus.Gauge
}

// errReplayBudget refuses a request whose body cannot be buffered now:
// the bodies buffered for other requests fill replay_budget.
var errReplayBudget = errors.New("request bodies buffered for replay fill replay_budget")

// take reserves n bytes, reporting false (and reserving nothing) when
// that would pass the limit.
func (b *replayBudget) take(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.limit.Load() {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			if b.gauge != nil {
				b.gauge.Add(float64(n))
			}
			return true
		}
	}
}

// give returns n reserved bytes.
func (b *replayBudget) give(n int64) {
	if n == 0 {
		return
	}
	b.used.Add(-n)
	if b.gauge != nil {
		b.gauge.Sub(float64(n))
	}
}

// replayFirstBuffer is a body's first buffer; it doubles from there as
// bytes arrive, up to the body's Content-Length when it has one.
const replayFirstBuffer = 64 << 10

// readReplay reads req's body whole, up to the route's max_replay_body,
// into a buffer charged to the replay budget as it grows; x holds the
// charge until the exchange ends (finish) or a shadow copy takes it on.
// The buffer grows as bytes arrive, even for a body whose Content-Length
// is known: a client announcing max_replay_body and then sending a byte
// a minute would otherwise hold that much of the budget for the price of
// a request head. When the budget has no room, it returns errReplayBudget
// and what it had read.
func (t *Table) readReplay(x *exchange, req *http.Request) ([]byte, error) {
	return t.budget.read(req.Body, req.ContentLength, x.route.maxReplayBody, &x.replayHeld)
}

// read reads r (of length n, -1 if unknown) whole, up to limit bytes
// (errBodyTooLarge past it), into a buffer charged to b as it grows and
// added to *held, which the caller gives back. It returns what it read
// with any error: errReplayBudget when b has no room.
func (b *replayBudget) read(r io.Reader, n, limit int64, held *int64) ([]byte, error) {
	// One byte more than the body may hold, to read its end (or find it
	// too long) without growing.
	most := limit + 1
	if n >= 0 {
		most = min(most, n+1)
	}
	// The charge stops at limit: the byte past it only reads the end, and
	// a budget equal to max_replay_body (which the configuration allows)
	// must hold one body of max_replay_body.
	var charged int64
	charge := func(capacity int64) bool {
		c := min(capacity, limit) - charged
		if c <= 0 {
			return true
		}
		if !b.take(c) {
			return false
		}
		charged += c
		*held += c
		return true
	}
	size := min(int64(replayFirstBuffer), most)
	if !charge(size) {
		return nil, errReplayBudget
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) > limit {
				return buf, errBodyTooLarge
			}
			grow := min(int64(cap(buf)), most-int64(cap(buf)))
			if grow == 0 {
				// More than its Content-Length, which net/http does
				// not let a body hold.
				return buf, errBodyIncomplete
			}
			if !charge(int64(cap(buf)) + grow) {
				return buf, errReplayBudget
			}
			buf = append(make([]byte, 0, int64(cap(buf))+grow), buf...)
		}
		k, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		switch {
		case err == io.EOF:
			if int64(len(buf)) > limit {
				return buf, errBodyTooLarge
			}
			return buf, nil
		case err != nil:
			return buf, err
		}
	}
}
