package store

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"strangler/domain"
)

// Leftovers is what PurgeRemovedRoutes deleted of one route: how many
// learned response schemas (method and status pairs), shadow mismatch
// samples and learned noise fields.
type Leftovers struct {
	Route                   string
	Schemas, Samples, Noise int
}

// leftoverTables are the tables that keep data by route name, without
// an end of their own, with the column saying when a row was last
// written (a noise field's when it was learned: learning it again
// changes nothing), and where each table's count goes.
var leftoverTables = []struct {
	table, at string
	count     func(*Leftovers) *int
}{
	{"strangler_schemas", "updated_at", func(l *Leftovers) *int { return &l.Schemas }},
	{"strangler_samples", "at", func(l *Leftovers) *int { return &l.Samples }},
	{"strangler_noise", "added_at", func(l *Leftovers) *int { return &l.Noise }},
}

// PurgeRemovedRoutes deletes the learned response schemas, the shadow
// mismatch samples and the learned noise of every route not in keep that
// none of them was written for since notSince, a time on the store's
// clock (a replica still serving an older configuration keeps its
// routes' alive), each route's deletion audited in the same transaction
// with the entry audit makes of it. It returns what it deleted, by
// route. The rows are stamped on the store's clock (see clock, and
// AddSample), which notSince is on too: a replica whose own clock is
// hours behind does not stamp what it learns as long unwritten.
func (s *Store) PurgeRemovedRoutes(ctx context.Context, keep []string, notSince time.Time, audit func(Leftovers) domain.AuditEntry) ([]Leftovers, error) {
	var purged []Leftovers
	err := s.auditedTx(ctx, func(tx *sql.Tx) error {
		purged = nil
		found := map[string]*Leftovers{}
		recent := map[string]bool{}
		for _, t := range leftoverTables {
			rows, err := tx.QueryContext(ctx, `SELECT route, COUNT(*), MAX(`+t.at+`) FROM `+t.table+` GROUP BY route`)
			if err != nil {
				return err
			}
			for rows.Next() {
				var route string
				var n int
				var last time.Time
				if err := rows.Scan(&route, &n, timeCol{&last}); err != nil {
					rows.Close()
					return err
				}
				if slices.Contains(keep, route) {
					continue
				}
				if !last.Before(notSince) {
					recent[route] = true
				}
				l := found[route]
				if l == nil {
					l = &Leftovers{Route: route}
					found[route] = l
				}
				*t.count(l) = n
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return err
			}
		}
		for route, l := range found {
			if !recent[route] {
				purged = append(purged, *l)
			}
		}
		slices.SortFunc(purged, func(a, b Leftovers) int { return strings.Compare(a.Route, b.Route) })
		for _, l := range purged {
			for _, t := range leftoverTables {
				if _, err := tx.ExecContext(ctx, `DELETE FROM `+t.table+` WHERE route = $1`, l.Route); err != nil {
					return err
				}
			}
			if err := s.appendAudit(ctx, tx, audit(l)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: purge removed routes: %w", err)
	}
	return purged, nil
}
