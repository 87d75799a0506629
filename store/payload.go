package store

import (
	"context"
	"database/sql"
	"fmt"
)

// payload is what a journaled write keeps of its request and of the
// primary's answer: everything a replay needs, and everything in it that
// may identify a patient (the path, the headers, the body, where the
// primary put what it created and its id). It is encrypted when the store
// has keys, and erased once the write is settled (applied, skipped or
// discarded): only the metadata stays for repairs.keep.
type payload struct {
	target    string
	header    []byte // encodeHeader's form
	body      []byte
	location  string
	primaryID string
}

// payloadColumns are a journaled write's payload columns, in payload's
// order, then the flag saying whether they are sealed.
const payloadColumns = `target, header, body, location, primary_id, sealed`

func repairAAD(id, column string) string { return "strangler_repairs." + column + "/" + id }

// seal returns p as it is stored for the write id, and whether that is
// encrypted.
func (s *Store) seal(id string, p payload) (payload, bool) {
	if s.keys == nil {
		return p, false
	}
	k := s.keys
	return payload{
		target:    k.sealText(repairAAD(id, "target"), p.target),
		header:    k.sealBytes(repairAAD(id, "header"), p.header),
		body:      k.sealBytes(repairAAD(id, "body"), p.body),
		location:  k.sealText(repairAAD(id, "location"), p.location),
		primaryID: k.sealText(repairAAD(id, "primary_id"), p.primaryID),
	}, true
}

// open is the inverse of seal. Its error says that only the payload is
// lost, and wraps ErrKeyLost when a key is missing.
func (s *Store) open(id string, p payload, sealed bool) (payload, error) {
	if !sealed {
		return p, nil
	}
	k := s.keys
	var out payload
	var errs [5]error
	out.target, errs[0] = k.openText(repairAAD(id, "target"), p.target)
	out.header, errs[1] = k.openBytes(repairAAD(id, "header"), p.header)
	out.body, errs[2] = k.openBytes(repairAAD(id, "body"), p.body)
	out.location, errs[3] = k.openText(repairAAD(id, "location"), p.location)
	out.primaryID, errs[4] = k.openText(repairAAD(id, "primary_id"), p.primaryID)
	for _, err := range errs {
		if err != nil {
			return payload{}, fmt.Errorf("repair %s: its target, headers and body cannot be read (%w); its route, state and times are intact", id, err)
		}
	}
	return out, nil
}

// sealedOutcome is the SET clause for a write's location and primary id,
// the primary's answer, taking its arguments (sealedOutcomeArgs) from $n
// on: the row says whether its payload is encrypted, so both forms are
// passed and the row picks.
func sealedOutcome(n int) string {
	return fmt.Sprintf(`location = CASE WHEN sealed THEN $%d ELSE $%d END,
		primary_id = CASE WHEN sealed THEN $%d ELSE $%d END`, n, n+1, n+2, n+3)
}

// sealedOutcomeArgs appends to args sealedOutcome's arguments for the
// write id. A row encrypted with keys this store does not have gets
// neither form: its payload cannot be read anyway, and a clear value must
// not join it.
func (s *Store) sealedOutcomeArgs(args []any, id, location, primaryID string) []any {
	var sl, sp string
	if s.keys != nil {
		p, _ := s.seal(id, payload{location: location, primaryID: primaryID})
		sl, sp = p.location, p.primaryID
	}
	return append(args, sl, clean(location), sp, clean(primaryID))
}

// erase is the SET clause that drops a settled write's payload.
func (s *Store) erase() string {
	b := s.dialect.emptyBlob
	return `target = '', header = ` + b + `, body = ` + b + `, location = '', primary_id = '', sealed = FALSE`
}

// resourceKey is the queue's ordering key for a resource: its keyed
// digest, equal for equal paths on every replica, and unreadable.
func (s *Store) resourceKey(resource string) string {
	return s.hasher.Digest("resource", clean(resource))
}

// resourceView is how listings show a resource: view when the caller made
// one (the path with the route's parameters hashed), else every segment
// hashed.
func (s *Store) resourceView(view, resource string) string {
	if view == "" {
		view = s.hasher.Path("", clean(resource))
	}
	if view == "" {
		return "/" // never empty: empty marks rows journaled before 0030
	}
	return clean(view)
}

// SweepRepairs erases what settled writes still hold of their requests
// (rows journaled by earlier releases, which did not erase; every write
// has a target until it is erased), makes the resources that earlier
// releases journaled in clear digests and records what the POSTs they
// journaled stand for (fillStandsFor). It returns how many payloads it erased. The repair
// worker runs it at start and every hour, so it catches up on whatever
// passed its time while the facade was down.
func (s *Store) SweepRepairs(ctx context.Context) (int, error) {
	res, err := s.db.ExecContext(ctx, `
		UPDATE strangler_repairs SET `+s.erase()+`
		WHERE `+statesIn(finalStates)+` AND target <> ''`)
	if err != nil {
		return 0, fmt.Errorf("store: sweep repairs: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: sweep repairs: %w", err)
	}
	if err := s.hashOldResources(ctx); err != nil {
		return int(n), err
	}
	if err := s.fillStandsFor(ctx, s.db); err != nil {
		return int(n), err
	}
	return int(n), nil
}

// hashOldResources turns the clear resources of rows journaled before
// migration 0030 (resource_view still empty) into digests, so that a
// write journaled now queues behind an older one to the same resource.
// Replicas of an earlier release still running during an upgrade keep
// journaling clear ones; the hourly sweep catches up with them.
func (s *Store) hashOldResources(ctx context.Context) error {
	for {
		rows, err := s.db.QueryContext(ctx, `
			SELECT id, resource FROM strangler_repairs WHERE resource_view = '' LIMIT 500`)
		if err != nil {
			return fmt.Errorf("store: hash old resources: %w", err)
		}
		type old struct{ id, resource string }
		var batch []old
		for rows.Next() {
			var o old
			if err := rows.Scan(&o.id, &o.resource); err != nil {
				rows.Close()
				return fmt.Errorf("store: hash old resources: %w", err)
			}
			batch = append(batch, o)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: hash old resources: %w", err)
		}
		if len(batch) == 0 {
			return nil
		}
		err = inTx(ctx, s.db, func(tx *sql.Tx) error {
			for _, o := range batch {
				if _, err := tx.ExecContext(ctx, `
					UPDATE strangler_repairs SET resource = $2, resource_view = $3
					WHERE id = $1 AND resource_view = ''`,
					o.id, s.resourceKey(o.resource), s.resourceView("", o.resource)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: hash old resources: %w", err)
		}
	}
}
