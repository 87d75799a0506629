package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"strangler/domain"
)

// timeLayout is how SQLite stores times: fixed width, UTC, microseconds,
// so that text order is time order and range conditions work on text.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// formatTime is t.Format(timeLayout) without the work of reading the
// layout on every call: that was 3% of the SQLite store's CPU per dual
// write, each of which passes six times. Years outside 0–9999, which the
// layout does not write in four digits, go through Format.
func formatTime(t time.Time) string {
	year, month, day := t.Date()
	if year < 0 || year > 9999 {
		return t.Format(timeLayout)
	}
	hour, minute, sec := t.Clock()
	var b [len(timeLayout)]byte
	put := func(at, v, digits int) {
		for i := at + digits - 1; i >= at; i-- {
			b[i] = byte('0' + v%10)
			v /= 10
		}
	}
	put(0, year, 4)
	b[4] = '-'
	put(5, int(month), 2)
	b[7] = '-'
	put(8, day, 2)
	b[10] = 'T'
	put(11, hour, 2)
	b[13] = ':'
	put(14, minute, 2)
	b[16] = ':'
	put(17, sec, 2)
	b[19] = '.'
	put(20, t.Nanosecond()/1000, 6)
	b[26] = 'Z'
	return string(b[:])
}

// ts converts t into a query argument: UTC at microsecond precision, the
// precision PostgreSQL keeps, so both back-ends give back the same time.
func (s *Store) ts(t time.Time) any {
	return s.dialect.encodeTime(t.UTC().Truncate(time.Microsecond))
}

// tsOrNull is ts, with the zero time as NULL.
func (s *Store) tsOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.ts(t)
}

// timeCol scans a time column from either back-end: a time.Time from
// PostgreSQL, text in timeLayout from SQLite. NULL scans as the zero time.
type timeCol struct{ t *time.Time }

// Scan implements sql.Scanner.
func (c timeCol) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*c.t = time.Time{}
	case time.Time:
		*c.t = v.UTC()
	case string:
		return c.parse(v)
	case []byte:
		return c.parse(string(v))
	default:
		return fmt.Errorf("store: scan time from %T", src)
	}
	return nil
}

func (c timeCol) parse(v string) error {
	t, err := time.Parse(timeLayout, v)
	if err != nil {
		// Written by something else, such as an operator's SQL.
		if t, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return fmt.Errorf("store: scan time: %w", err)
		}
	}
	*c.t = t.UTC()
	return nil
}

// scanTime returns a scanner that stores a time column in *t.
func scanTime(t *time.Time) sql.Scanner { return timeCol{t} }

// floatOrNull converts an optional number into a query argument.
func floatOrNull(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

// sharePtr reads a route's share of traffic to modern (an override's, a
// ramp's, a change request's percent) as it is served: one an older
// release stored finer than the 0.01% steps, which every new one is
// checked to (domain.CheckPercent), reads as the share the router sends
// (domain.ServedPercent), not as written. Audit entries keep theirs as
// written: the hash chain covers them.
func sharePtr(f sql.NullFloat64) *float64 {
	if !f.Valid {
		return nil
	}
	v := domain.ServedPercent(f.Float64)
	return &v
}

// floatPtr is the inverse of floatOrNull after a scan.
func floatPtr(f sql.NullFloat64) *float64 {
	if !f.Valid {
		return nil
	}
	v := f.Float64
	return &v
}

// clean makes s storable as text in both back-ends: PostgreSQL refuses
// invalid UTF-8 and NUL bytes, which can reach us from decoded path
// parameters or a backend's error message. Refusing them would lose the
// write they describe; replacing them at worst merges two odd resource
// names into one, which only serialises their writes more.
func clean[S ~string](s S) S {
	t := strings.ToValidUTF8(string(s), "\uFFFD")
	return S(strings.ReplaceAll(t, "\x00", "\uFFFD"))
}

// limitOr returns limit if it is in (0, max], def if it is not positive,
// and max if it is larger.
func limitOr(limit, def, max int) int {
	switch {
	case limit <= 0:
		return def
	case limit > max:
		return max
	}
	return limit
}

// lock takes the dialect's transaction-scoped lock on (ns, key), if it has
// one.
func (s *Store) lock(ctx context.Context, tx *sql.Tx, ns int32, key string) error {
	if s.dialect.lockKey == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.dialect.lockKey, ns, key); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	return nil
}
