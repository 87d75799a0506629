package shadow

import (
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
)

// Capture keeps the first bytes written to it, up to a cap, and notes
// whether more came: tee a response body into it while it streams to the
// client, then compare what it kept. Writes never fail and never block,
// so the client's stream cannot be slowed or broken by the capture. A
// Capture is reusable through Reset, which keeps its buffer (pool it with
// sync.Pool); it is not safe for concurrent use.
type Capture struct {
	buf       []byte
	limit     int
	truncated bool
}

// NewCapture returns a Capture keeping up to limit bytes.
func NewCapture(limit int) *Capture {
	c := &Capture{}
	c.Reset(limit)
	return c
}

// maxRetained keeps a Capture that once held a large body from pinning
// that memory while pooled.
const maxRetained = 256 << 10

// Reset empties the capture and sets a new cap, keeping the buffer unless
// it is large.
func (c *Capture) Reset(limit int) {
	if cap(c.buf) > maxRetained {
		c.buf = nil
	}
	c.buf, c.limit, c.truncated = c.buf[:0], max(limit, 0), false
}

// Write keeps what fits under the cap and always reports all of p written.
func (c *Capture) Write(p []byte) (int, error) {
	room := c.limit - len(c.buf)
	if len(p) > room {
		c.truncated = true
		c.buf = append(c.buf, p[:room]...)
	} else {
		c.buf = append(c.buf, p...)
	}
	return len(p), nil
}

// ReadFrom keeps what fits under the cap from r and reads the rest to
// the end, reading straight into the capture's buffer: io.Copy would
// otherwise allocate a 32 KiB buffer for every response captured.
func (c *Capture) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		room := c.limit - len(c.buf)
		if room == 0 {
			// Past the cap: io.Discard reads the rest through a buffer
			// of its own pool (one on this stack would escape to the
			// heap with every call, through r's Read).
			n, err := io.Copy(io.Discard, r)
			if n > 0 {
				c.truncated = true
			}
			return total + n, err
		}
		if cap(c.buf)-len(c.buf) < min(room, 4096) {
			c.buf = slices.Grow(c.buf, min(room, max(4096, len(c.buf))))
		}
		free := c.buf[len(c.buf):min(cap(c.buf), c.limit)]
		n, err := r.Read(free)
		c.buf = c.buf[:len(c.buf)+n]
		total += int64(n)
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Bytes returns the bytes kept; they are valid until the next Reset.
func (c *Capture) Bytes() []byte { return c.buf }

// Truncated reports whether more was written than the cap.
func (c *Capture) Truncated() bool { return c.truncated }

// Response returns the captured body as a Response with the given status
// and header.
func (c *Capture) Response(status int, h http.Header) Response {
	return Response{Status: status, Header: h, Body: c.buf, Truncated: c.truncated}
}

// Sampler decides per request whether it is shadowed, for compare.sample.
// The zero Sampler samples nothing. It is safe for concurrent use.
type Sampler struct {
	// threshold is the rate scaled to 2^64; all is set for a rate of 1,
	// which the scale cannot hold.
	threshold uint64
	all       bool
}

// NewSampler returns a Sampler choosing the share rate (0 to 1) of
// requests at random.
func NewSampler(rate float64) Sampler {
	switch {
	case rate >= 1:
		return Sampler{all: true}
	case !(rate > 0): // also NaN
		return Sampler{}
	}
	t := rate * (1 << 64)
	if t >= math.MaxUint64 {
		return Sampler{all: true}
	}
	return Sampler{threshold: uint64(t)}
}

// Sample reports whether this request is chosen; it costs one random
// number from the runtime's per-thread generator, no lock.
func (s Sampler) Sample() bool {
	if s.all {
		return true
	}
	return s.threshold != 0 && rand.Uint64() < s.threshold
}
