package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"strangler/domain"
	"strangler/edge/canonical"
	"strangler/phi"
)

// foldResources re-keys the open writes (sent, pending, unknown, dead)
// that an earlier release journaled under another name of their resource
// than this one gives (canonical.Resource), so that a new write to
// /records/4 neither waits for nor is delivered before an old one to the
// same record, and the secondary cannot end with the older body. A
// release before migration 0170 named a write's resource by its
// canonical path unfolded (/Records/4.json), one before migration 0200
// by its loose reading (/records/004), where this one reads an integer
// segment as backends read an id (/records/4). Run after either
// migration, in its transaction.
//
// A resource is kept only as a keyed digest, so the clear path it was
// made from is found again among those the write's request and answer
// can name (foldCandidates): its target, and for a create the resource
// its Location or its primary's id named, or its own; the one whose
// digest is the row's, under either earlier rule or this one, is keyed
// by the rule new writes follow. A row whose request cannot be read (its
// store_encryption key is gone), whose target no longer parses, or whose
// digest none of them gives (a rule older still) keeps its key; they are counted in the log, which names no
// path. A row already folded is left as it is, so running this again
// changes nothing.
//
// Two writes that now share a resource may both hold its turn with the
// primary (two spellings of it, sent at once): the unique index on the
// turn would refuse the second, and were both to keep it, recovery could
// resend both at once. The write already under the folded key keeps it,
// else the re-keyed one first in the journal's order of ids; the others
// wait their turn as a write that found it held does.
func (s *Store) foldResources(ctx context.Context, tx *sql.Tx) error {
	ok, err := s.journalHashKey(ctx, tx)
	if err != nil || !ok {
		return err
	}
	type row struct {
		id, resource, view string
		state              domain.State
		p                  payload
		sealed             bool
	}
	var rekeyed, unreadable, unparsable, unrecognised int
	after := ""
	for {
		// Every write, by its primary key, the open ones picked here: a
		// condition on the state makes PostgreSQL gather every open write
		// through the state's partial indexes and sort them for each page.
		rows, err := tx.QueryContext(ctx, `
			SELECT id, resource, resource_view, state, target, location, primary_id, sealed FROM strangler_repairs
			WHERE id > $1 ORDER BY id LIMIT 500`, after)
		if err != nil {
			return fmt.Errorf("store: fold the resources of old writes: %w", err)
		}
		// Read whole before updating: a transaction's connection runs
		// one statement at a time.
		var page []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.resource, &r.view, &r.state, &r.p.target, &r.p.location, &r.p.primaryID, &r.sealed); err != nil {
				rows.Close()
				return fmt.Errorf("store: fold the resources of old writes: %w", err)
			}
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("store: fold the resources of old writes: %w", err)
		}
		if len(page) == 0 {
			break
		}
		for _, r := range page {
			after = r.id
			if r.state.Final() || r.view == "" {
				continue // settled, or a clear resource of before 0030 (hashOldResources)
			}
			p, err := s.open(r.id, r.p, r.sealed)
			if err != nil {
				unreadable++
				continue
			}
			candidates, ok := foldCandidates(r.id, p)
			if !ok {
				unparsable++
				continue
			}
			folded, ok := s.foldedResource(r.resource, candidates)
			if !ok {
				unrecognised++
				continue
			}
			key := s.resourceKey(folded)
			if key == r.resource {
				continue // folded already, or the same folded
			}
			if _, err := tx.ExecContext(ctx, `
				UPDATE strangler_repairs SET resource = $2, resource_view = $3,
					turn = turn AND NOT EXISTS (
						SELECT 1 FROM strangler_repairs o WHERE o.resource = $2 AND o.turn AND o.state = 'sent')
				WHERE id = $1`, r.id, key, s.foldedView(r.view, folded)); err != nil {
				return fmt.Errorf("store: fold the resources of old writes: %w", err)
			}
			rekeyed++
		}
	}
	if rekeyed > 0 {
		s.log.Info("store migration: open dual writes of an earlier release re-keyed to their resource as backends read paths loosely",
			"store", s.dialect.name, "writes", rekeyed)
	}
	if left := unreadable + unparsable + unrecognised; left > 0 {
		s.log.Warn("store migration: open dual writes of an earlier release keep their resource key, so new writes to the same resource under another spelling are not ordered with them",
			"store", s.dialect.name, "writes", left, "request_unreadable", unreadable, "target_unparsable", unparsable, "key_unrecognised", unrecognised)
	}
	return nil
}

// journalHashKey gives the store's hasher the key the journal's
// resources are digests under, as loadHashKey does after the migration,
// read in the migration's transaction tx; false when there is none that
// can be read: no write was hashed, or loadHashKey draws a new key, under
// which no old digest is found again anyway.
func (s *Store) journalHashKey(ctx context.Context, tx *sql.Tx) (bool, error) {
	var value []byte
	var sealed bool
	err := tx.QueryRowContext(ctx, `SELECT value, sealed FROM strangler_secrets WHERE name = $1`, hashKeyName).Scan(&value, &sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, fmt.Errorf("store: fold the resources of old writes: hash key: %w", err)
	}
	key, err := s.openSecret(hashKeyName, value, sealed)
	if err != nil || len(key) != phi.KeySize {
		return false, nil
	}
	s.hasher.SetKey([phi.KeySize]byte(key))
	return true, nil
}

// foldCandidate is a resource an earlier release may have named a write
// by (was: by the rule before migration 0170 or the one before 0200) and
// what this one names it by (is: canonical.Resource of it).
type foldCandidate struct{ was, is string }

// foldCandidates are the resources an earlier release may have named the
// write id by, read from p, its opened payload: its target's path; for
// a create whose answer named what it made, that path (the Location,
// resolved against the target, without any of its leading segments, as
// the primary's base path is unknown here) or its collection and the
// primary's id; and a create's own resource by any of the rules, which
// no other write shares and which is left as it is. False when the
// target does not parse.
func foldCandidates(id string, p payload) ([]foldCandidate, bool) {
	target, err := url.ParseRequestURI(p.target)
	if err != nil {
		return nil, false
	}
	path, ok := unfolded(target.EscapedPath())
	if !ok {
		return nil, false
	}
	var out []foldCandidate
	add := func(p string) {
		if was, ok := unfolded(p); ok {
			is := canonical.Resource(was)
			out = append(out, foldCandidate{was, is}, foldCandidate{looseRead(was), is})
		}
	}
	add(path)
	if id := p.primaryID; id != "" && id != "." && id != ".." {
		add(strings.TrimSuffix(path, "/") + "/" + url.PathEscape(id))
	}
	if l, err := url.Parse(p.location); err == nil && p.location != "" {
		at := target.ResolveReference(l).EscapedPath()
		for i := 0; i < len(at); {
			add(at[i:])
			next := strings.IndexByte(at[i+1:], '/')
			if next < 0 {
				break
			}
			i += 1 + next
		}
	}
	// A create's own resource, by each rule: no other write shares it, so
	// whichever it is, it stays.
	for _, r := range []string{path, looseRead(path), canonical.Resource(path)} {
		own := r + "#" + id
		out = append(out, foldCandidate{own, own})
	}
	return out, true
}

// foldedResource is the resource this release names a write by whose
// resource key is key, an earlier release's or this one's, found among
// candidates; false when none of them gives key.
func (s *Store) foldedResource(key string, candidates []foldCandidate) (string, bool) {
	for _, c := range candidates {
		if s.resourceKey(c.was) == key || s.resourceKey(c.is) == key {
			return c.is, true
		}
	}
	return "", false
}

// unfolded is the resource a release before migration 0170 named a
// write to path by: its canonical form without a trailing slash.
func unfolded(path string) (string, bool) {
	p, err := canonical.Canonicalize(path)
	if err != nil {
		return "", false
	}
	return canonical.RouteKey(p.Escaped), true
}

// looseRead is the resource a release from migration 0170 to 0200 named
// a write to path, unfolded, by: its loose reading (canonical.Fold), an
// integer segment as spelled.
func looseRead(path string) string {
	if folded, err := canonical.Fold(path); err == nil {
		return folded
	}
	return path
}

// foldedView is the resource_view of a write re-keyed to resource whose
// view was view: the route's pattern is not known here, so view stands
// for it, its placeholders for parameters and its clear segments for
// what the pattern spelled out.
func (s *Store) foldedView(view, resource string) string {
	segs := strings.Split(view, "/")
	for i, seg := range segs {
		inner, ok := strings.CutPrefix(seg, "{")
		if !ok {
			continue
		}
		name, _, named := strings.Cut(inner, ":h:")
		switch {
		case !named:
			segs[i] = "{}" // a segment unlike the pattern: hashed, unnamed
		case name == "*":
			segs[i] = "*"
		default:
			segs[i] = "{" + name + "}"
		}
	}
	return s.resourceView(s.hasher.Path(strings.Join(segs, "/"), resource), resource)
}
