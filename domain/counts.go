package domain

import "time"

// HourCount is what one route saw in one UTC hour. The store's AddCounts adds it
// to what is stored, so each replica flushes only what it counted since its
// last flush.
type HourCount struct {
	Route string
	// Hour is truncated to the hour in UTC by the store.
	Hour time.Time
	// Requests counts every request; Modern those modern served;
	// Fallbacks those modern failed and legacy served.
	Requests, Modern, Fallbacks int64
	// ConfirmedMissing counts the not_found fallbacks that legacy answered
	// 404 or 410 too: not among Fallbacks, which are migration gaps.
	ConfirmedMissing int64
	// Legacy counts the requests legacy answered itself, not as a
	// fallback: traffic that still depends on legacy without ever trying
	// modern.
	Legacy int64
	// ModernFailed counts the requests among Modern that modern served
	// no one: answers that were a 5xx or broke off, and none before the
	// client left (whether or not the guard counts its leaving). No
	// service the verdict counts.
	ModernFailed int64
	// ShadowMatches and ShadowMismatches count shadow comparisons.
	ShadowMatches, ShadowMismatches int64
	// LastFallbackAt is the latest fallback in the hour; zero if none.
	LastFallbackAt time.Time
}

// ClientCount is how many requests from one client app version reached
// legacy on one route.
type ClientCount struct {
	Route string
	// Hour is truncated to the hour in UTC; zero in the store's TopLegacyClients'
	// results, which add up hours.
	Hour time.Time
	// Client is the app version, from User-Agent or X-App-Version.
	Client   string
	Requests int64
}

// MergeHourCounts adds up the counts of one route and hour into one, in
// the order each first appears: a batch the store upserts in one
// statement may touch a row only once, and counts held back through an
// outage stay one per route and hour.
func MergeHourCounts(counts []HourCount) []HourCount {
	type key struct {
		route string
		hour  int64
	}
	at := map[key]int{}
	var out []HourCount
	for _, c := range counts {
		k := key{c.Route, c.Hour.UnixNano()}
		i, ok := at[k]
		if !ok {
			at[k] = len(out)
			out = append(out, c)
			continue
		}
		m := &out[i]
		m.Requests += c.Requests
		m.Modern += c.Modern
		m.Fallbacks += c.Fallbacks
		m.ConfirmedMissing += c.ConfirmedMissing
		m.Legacy += c.Legacy
		m.ModernFailed += c.ModernFailed
		m.ShadowMatches += c.ShadowMatches
		m.ShadowMismatches += c.ShadowMismatches
		if c.LastFallbackAt.After(m.LastFallbackAt) {
			m.LastFallbackAt = c.LastFallbackAt
		}
	}
	return out
}

// MergeClientCounts adds up the counts of one route, hour and client into
// one, in the order each first appears.
func MergeClientCounts(counts []ClientCount) []ClientCount {
	type key struct {
		route, client string
		hour          int64
	}
	at := map[key]int{}
	var out []ClientCount
	for _, c := range counts {
		k := key{c.Route, c.Client, c.Hour.UnixNano()}
		if i, ok := at[k]; ok {
			out[i].Requests += c.Requests
			continue
		}
		at[k] = len(out)
		out = append(out, c)
	}
	return out
}
