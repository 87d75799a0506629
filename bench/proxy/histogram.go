package main

import (
	"math/bits"
	"time"
)

// histogram counts latencies in log-linear buckets (the HDR histogram
// layout): exact below 128 ns, then 128 buckets per power of two, so any
// recorded value is known to within 0.8%. Recording is an index
// computation and an increment: no allocation, no lock (each load
// generator connection owns one histogram; they are merged afterwards).
type histogram struct {
	counts [histBuckets]uint64
	n      uint64
}

const (
	subBits = 7 // 2^7 = 128 buckets per power of two
	// maxBits bounds recorded values to 2^maxBits-1 ns (about 137 s);
	// longer latencies count in the last bucket.
	maxBits     = 37
	histBuckets = (maxBits - subBits + 1) << subBits
)

// bucketOf returns the bucket holding v nanoseconds.
func bucketOf(v uint64) int {
	if v >= 1<<maxBits {
		v = 1<<maxBits - 1
	}
	if v < 1<<subBits {
		return int(v)
	}
	// v has subBits+e significant bits; keep the top subBits+1 of them.
	e := bits.Len64(v) - subBits
	return (e-1)<<subBits + int(v>>(e-1))
}

// bucketRange returns the smallest value in bucket i and the bucket's width.
func bucketRange(i int) (low, width uint64) {
	if i < 2<<subBits {
		return uint64(i), 1
	}
	e := i >> subBits
	m := uint64(i - (e-1)<<subBits)
	return m << (e - 1), 1 << (e - 1)
}

func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

func (h *histogram) reset() { *h = histogram{} }

// quantile returns the q-quantile (0 < q <= 1) as the middle of the bucket
// holding it, or 0 for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.5)
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			low, width := bucketRange(i)
			return time.Duration(low + width/2)
		}
	}
	return time.Duration(1<<maxBits - 1)
}
