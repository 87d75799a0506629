package router

import (
	"context"
	"net/url"
	"sync/atomic"
	"time"

	"strangler/edge/canonical"
)

// RepairKeys records the entity keys modern did not have, for the backfill
// to copy from legacy: the next read then finds them in modern.
type RepairKeys interface {
	AddRepairKey(ctx context.Context, entity, key string) error
}

// repairKey is one key waiting to be recorded.
type repairKey struct{ entity, key string }

// repairKeys carries read-repair keys from the request path to RunRepairs.
type repairKeys struct {
	ch chan repairKey
	// dropping is set once a key found the queue full, until one finds
	// room again: one log line for a run of dropped keys, not one per
	// request while the store is away.
	dropping atomic.Bool
}

// repairQueue bounds the keys waiting to be recorded. A full queue drops
// the key (and logs it): the next fallback for it queues it again.
const repairQueue = 1024

// Backoff of RunRepairs while the store refuses keys: one attempt per
// backoff, however many fallbacks queue keys meanwhile. A key refused
// repairAttempts times is dropped, so that one the store can never take
// does not hold up the others for ever.
const (
	repairRetryMin = 100 * time.Millisecond
	repairRetryMax = 5 * time.Second
	repairAttempts = 8
)

// queueRepair hands a not_found fallback's entity key to RunRepairs; the
// request never waits for the state store. The key is the parameter of
// route key (the canonical path) as backends read its ends
// (canonical.LooseEnds), when so read it is still rt's, decoded:
// /patients/%34, /patients/4 and /patients/4.json (Rails' and Spring's
// format suffix) all name patient 4. A route whose pattern spells the
// suffix (GET /patients/{id}.json) has its parameter as matched.
func (t *Table) queueRepair(rt *route, method, routeKey string, params []string) {
	if loose := canonical.LooseEnds(routeKey); loose != routeKey {
		if same, ps := t.match(method, loose); same == rt {
			params = ps
		}
	}
	if rt.repairParam < 0 || rt.repairParam >= len(params) {
		return
	}
	key, _ := url.PathUnescape(params[rt.repairParam]) // canonical: valid escapes only
	select {
	case t.repairs.ch <- repairKey{rt.repairEntity, key}:
		t.repairs.dropping.Store(false)
	default:
		if !t.repairs.dropping.Swap(true) {
			t.log.Warn("read-repair queue full; keys are not recorded until it has room (no line per key)", "route", rt.name, "entity", rt.repairEntity)
		}
	}
}

// RunRepairs records read-repair keys until ctx ends. Without RepairKeys
// the keys are dropped. A key the store refuses (an outage, a restart) is
// kept and tried again after a backoff, while the queue holds the keys
// that come meanwhile: a store that is away gets one attempt per backoff
// instead of one per fallback, and the keys reach it once it is back.
func (r *Router) RunRepairs(ctx context.Context) error {
	backoff := time.Duration(0)
	for {
		var k repairKey
		select {
		case <-ctx.Done():
			return nil
		case k = <-r.repairs.ch:
		}
		if r.deps.RepairKeys == nil {
			continue
		}
		for attempt := 1; ; attempt++ {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := r.deps.RepairKeys.AddRepairKey(sctx, k.entity, k.key)
			cancel()
			if err == nil {
				backoff = 0
				break
			}
			if attempt == repairAttempts {
				r.deps.Log.Warn("recording a read-repair key failed; dropped it (the next fallback for it queues it again)", "entity", k.entity, "attempts", attempt, "error", err)
				break
			}
			backoff = min(max(2*backoff, repairRetryMin), repairRetryMax)
			r.deps.Log.Warn("recording a read-repair key failed; trying again", "entity", k.entity, "retry_in_ms", backoff.Milliseconds(), "error", err)
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
	}
}
