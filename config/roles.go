package config

import (
	"fmt"
	"slices"
	"time"
)

// Role is what an admin token may do. It is a closed set and ordered:
// each role may do everything the roles before it in Roles may.
type Role string

// The roles, least privileged first.
const (
	// RoleViewer reads: the route table, reports, the audit log, shadow
	// diffs, repair metadata and the status page.
	RoleViewer Role = "viewer"
	// RoleOperator also changes routing: flips, clears, ramps, force
	// tokens, approvals.
	RoleOperator Role = "operator"
	// RoleAdmin also reads journaled bodies (patient data) and retries or
	// discards repairs.
	RoleAdmin Role = "admin"
)

// Roles lists every role, least privileged first.
var Roles = []Role{RoleViewer, RoleOperator, RoleAdmin}

// UnmarshalText parses a role name.
func (r *Role) UnmarshalText(b []byte) error {
	if !slices.Contains(Roles, Role(b)) {
		return fmt.Errorf("unknown role %q; want viewer, operator or admin", b)
	}
	*r = Role(b)
	return nil
}

// Allows reports whether r may do what needs the role need. An unknown
// role allows nothing.
func (r Role) Allows(need Role) bool {
	have, want := slices.Index(Roles, r), slices.Index(Roles, need)
	return have >= 0 && want >= 0 && have >= want
}

// Date is a calendar day in UTC, written 2006-01-02.
type Date struct{ time.Time }

// dateLayout is how a Date is written.
const dateLayout = time.DateOnly

// UnmarshalText parses a day such as 2026-03-31.
func (d *Date) UnmarshalText(b []byte) error {
	t, err := time.Parse(dateLayout, string(b))
	if err != nil {
		return fmt.Errorf("invalid date %q; write it like 2026-03-31", b)
	}
	d.Time = t
	return nil
}

// MarshalText writes the day the way it is parsed.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.Format(dateLayout)), nil }

// String is the day as written.
func (d Date) String() string { return d.Format(dateLayout) }

// ExpiresAt is the first instant the token no longer works: the end of
// its Expires day in UTC. The zero time means it never expires.
func (t Token) ExpiresAt() time.Time {
	if t.Expires == nil {
		return time.Time{}
	}
	return t.Expires.AddDate(0, 0, 1)
}

// Expired reports whether the token no longer works at now.
func (t Token) Expired(now time.Time) bool {
	end := t.ExpiresAt()
	return !end.IsZero() && !now.Before(end)
}
