package stats

import (
	"context"
	"sync"
	"time"

	"strangler/domain"
)

// Sink is where flushed counts go: the state store's hourly counts.
type Sink interface {
	AddCounts(ctx context.Context, counts []domain.HourCount) error
	AddLegacyClients(ctx context.Context, counts []domain.ClientCount) error
}

// Clock is a sink whose clock replicas share (the state store's on
// PostgreSQL): ClockOffset is how far it is ahead of this replica's.
type Clock interface {
	ClockOffset(ctx context.Context) (time.Duration, error)
}

// Flush adds the counts gathered since the last flush to sink, attributed
// to the hour of now. Counts a failed flush could not add are held, with
// the hour they were gathered in, for the next one: a store outage delays
// the report rather than losing counts or moving them to a later hour
// (the retirement verdict reads fallbacks by hour).
//
// When sink is a Clock, now and the last fallback's time are moved onto
// its clock first (by the offset measured at this flush, or at the last
// one that could measure it): every replica files its counts under the
// same hours, so one whose clock is days behind does not file today's
// fallbacks under hours a retirement window no longer reads.
func (c *Counters) Flush(ctx context.Context, sink Sink, now time.Time) error {
	off := c.sinkOffset(ctx, sink)
	hour := now.Add(off).UTC().Truncate(time.Hour)
	var counts []domain.HourCount
	var clients []domain.ClientCount
	for _, r := range c.all() {
		hc := domain.HourCount{
			Route:            r.name,
			Hour:             hour,
			Requests:         r.pending.requests.Swap(0),
			Modern:           r.pending.modern.Swap(0),
			Fallbacks:        r.pending.fallbacks.Swap(0),
			ConfirmedMissing: r.pending.confirmedMissing.Swap(0),
			Legacy:           r.pending.legacy.Swap(0),
			ModernFailed:     r.pending.modernFailed.Swap(0),
			ShadowMatches:    r.pending.shadowMatch.Swap(0),
			ShadowMismatches: r.pending.shadowMismatch.Swap(0),
		}
		if ns := r.lastFallback.Load(); ns != 0 && hc.Fallbacks > 0 {
			hc.LastFallbackAt = time.Unix(0, ns).Add(off).UTC()
		}
		if hc.Requests+hc.Fallbacks+hc.ConfirmedMissing+hc.ShadowMatches+hc.ShadowMismatches > 0 {
			counts = append(counts, hc)
		}
		r.clientsMu.Lock()
		cs := r.clients
		r.clients = map[string]int64{}
		r.clientsMu.Unlock()
		for client, n := range cs {
			clients = append(clients, domain.ClientCount{Route: r.name, Hour: hour, Client: client, Requests: n})
		}
	}
	c.forgetFlushed()
	h := &c.held
	h.mu.Lock()
	defer h.mu.Unlock()
	counts = domain.MergeHourCounts(append(h.counts, counts...))
	clients = domain.MergeClientCounts(append(h.clients, clients...))
	h.counts, h.clients = nil, nil
	if len(counts) > 0 {
		if err := sink.AddCounts(ctx, counts); err != nil {
			h.counts, h.clients = counts, clients
			return err
		}
	}
	if len(clients) > 0 {
		if err := sink.AddLegacyClients(ctx, clients); err != nil {
			h.clients = clients
			return err
		}
	}
	return nil
}

// sinkOffset is how far sink's clock is ahead of this replica's: zero
// if it is no Clock; the last offset measured if it cannot tell now (a
// store down takes no counts either, and holds them back under an hour
// on its clock as last known).
func (c *Counters) sinkOffset(ctx context.Context, sink Sink) time.Duration {
	if clk, ok := sink.(Clock); ok {
		if off, err := clk.ClockOffset(ctx); err == nil {
			c.offset.Store(int64(off))
		}
	}
	return time.Duration(c.offset.Load())
}

// heldBack is what a failed flush could not add, by the hour it was
// gathered in. Its lock orders flushes (the loop's, a report's): each
// takes what the one before held back.
type heldBack struct {
	mu      sync.Mutex
	counts  []domain.HourCount
	clients []domain.ClientCount
}
