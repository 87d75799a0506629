package router

import (
	"context"
	"net/url"
	"time"
)

// RepairKeys records the entity keys modern did not have, for the backfill
// to copy from legacy: the next read then finds them in modern.
type RepairKeys interface {
	AddRepairKey(ctx context.Context, entity, key string) error
}

// repairKey is one key waiting to be recorded.
type repairKey struct{ entity, key string }

// repairQueue bounds the keys waiting to be recorded. A full queue drops
// the key (and logs it): the next fallback for it queues it again.
const repairQueue = 1024

// queueRepair hands a not_found fallback's entity key to RunRepairs; the
// request never waits for the state store. The key is the parameter of
// the canonical path, decoded: /patients/%34 and /patients/4 both name
// patient 4.
func (t *Table) queueRepair(rt *route, params []string) {
	if rt.repairParam < 0 || rt.repairParam >= len(params) {
		return
	}
	key, _ := url.PathUnescape(params[rt.repairParam]) // canonical: valid escapes only
	select {
	case t.repairs <- repairKey{rt.repairEntity, key}:
	default:
		t.log.Warn("read-repair queue full; a key was not recorded", "route", rt.name, "entity", rt.repairEntity)
	}
}

// RunRepairs records read-repair keys until ctx ends. Without RepairKeys
// the keys are dropped.
func (r *Router) RunRepairs(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case k := <-r.repairs:
			if r.deps.RepairKeys == nil {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := r.deps.RepairKeys.AddRepairKey(sctx, k.entity, k.key); err != nil {
				r.deps.Log.Warn("recording a read-repair key failed", "entity", k.entity, "error", err)
			}
			cancel()
		}
	}
}
