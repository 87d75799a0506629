package stats

import (
	"context"
	"time"

	"strangler/domain"
)

// Sink is where flushed counts go: the state store's hourly counts.
type Sink interface {
	AddCounts(ctx context.Context, counts []domain.HourCount) error
	AddLegacyClients(ctx context.Context, counts []domain.ClientCount) error
}

// Flush adds the counts gathered since the last flush to sink, attributed
// to the hour of now. Counts a failed flush could not add are kept for the
// next one, so a store outage delays the report rather than losing counts.
func (c *Counters) Flush(ctx context.Context, sink Sink, now time.Time) error {
	hour := now.UTC().Truncate(time.Hour)
	var counts []domain.HourCount
	var clients []domain.ClientCount
	taken := map[*Route]domain.HourCount{}
	takenClients := map[*Route]map[string]int64{}
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
			hc.LastFallbackAt = time.Unix(0, ns).UTC()
		}
		if hc.Requests+hc.Fallbacks+hc.ConfirmedMissing+hc.ShadowMatches+hc.ShadowMismatches > 0 {
			counts = append(counts, hc)
			taken[r] = hc
		}
		r.clientsMu.Lock()
		cs := r.clients
		r.clients = map[string]int64{}
		r.clientsMu.Unlock()
		if len(cs) > 0 {
			takenClients[r] = cs
			for client, n := range cs {
				clients = append(clients, domain.ClientCount{Route: r.name, Hour: hour, Client: client, Requests: n})
			}
		}
	}
	if len(counts) > 0 {
		if err := sink.AddCounts(ctx, counts); err != nil {
			for r, hc := range taken {
				r.pending.requests.Add(hc.Requests)
				r.pending.modern.Add(hc.Modern)
				r.pending.fallbacks.Add(hc.Fallbacks)
				r.pending.confirmedMissing.Add(hc.ConfirmedMissing)
				r.pending.legacy.Add(hc.Legacy)
				r.pending.modernFailed.Add(hc.ModernFailed)
				r.pending.shadowMatch.Add(hc.ShadowMatches)
				r.pending.shadowMismatch.Add(hc.ShadowMismatches)
			}
			c.restoreClients(takenClients)
			return err
		}
	}
	if len(clients) > 0 {
		if err := sink.AddLegacyClients(ctx, clients); err != nil {
			c.restoreClients(takenClients)
			return err
		}
	}
	return nil
}

func (c *Counters) restoreClients(taken map[*Route]map[string]int64) {
	for r, cs := range taken {
		r.clientsMu.Lock()
		for client, n := range cs {
			r.clients[client] += n
		}
		r.clientsMu.Unlock()
	}
}
