package backfill

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// refuse says why the column cannot take source value v as it is, or "":
// a value no text column can hold, or one the target type would change
// (unless the column is lossy). The reason names the type, never the
// value.
func (c *column) refuse(v []byte) string {
	if v == nil {
		return ""
	}
	switch {
	case c.binaryUUID():
		if len(v) != 16 {
			return fmt.Sprintf("a uuid needs 16 bytes, the value has %d", len(v))
		}
		return ""
	case c.isBytes():
		return ""
	case !utf8.Valid(v):
		return "not valid UTF-8 text"
	case bytes.IndexByte(v, 0) >= 0:
		return "contains a NUL byte, which PostgreSQL text cannot hold"
	case c.cfg.Lossy || c.lookup != nil:
		// A lookup's value is a key to find, not a value to store.
		return ""
	}
	if change := c.change(c.asText(v)); change != "" {
		return c.typ.full + " would " + change + " (lossy: true allows it)"
	}
	return ""
}

// change says what the target type would change about a value, or "".
// Values the type cannot parse at all are left to it: it refuses them
// with its own reason.
func (c *column) change(v []byte) string {
	if b := c.typ.base; (b == "date" || b == "timestamp" || b == "time") && isTextType(c.srcType) && relativeTime.Match(v) {
		return "read it as of the moment it runs (now, today, tomorrow, yesterday)"
	}
	switch t := c.typ; t.base {
	case "date":
		if timeOfDay(v) {
			return "drop the time of day"
		}
	case "timestamp", "time":
		if !t.tz && isTextType(c.srcType) && givesZone(v) {
			// A type without time zone ignores the one its input gives.
			return "drop the time zone or offset the text gives"
		}
		if p := t.mod(0); p >= 0 && fractionBeyond(v, p) {
			return fmt.Sprintf("round it to %d fractional digits", p)
		}
		if c.inZone(v) && skipped(v, c.zone) {
			return fmt.Sprintf("move it: %s skips that wall time (clocks go forward)", c.zone)
		}
		if t.base == "time" && givesDate(v) {
			return "drop the date"
		}
	case "smallint", "integer", "bigint":
		if c.numberToInteger() && !hasScale(v, 0) {
			return "round it to a whole number"
		}
	case "numeric":
		if s := t.mod(1); t.mod(0) >= 0 && !hasScale(v, max(s, 0)) {
			return fmt.Sprintf("round it to %d decimal places", max(s, 0))
		}
	case "character varying", "character":
		if n := t.mod(0); n >= 0 && utf8.RuneCount(v) > n {
			return fmt.Sprintf("cut it to %d characters", n)
		}
	case "bit", "bit varying":
		// A cast from text cuts bits on the right, or pads bit(n) there.
		switch n := t.mod(0); {
		case n >= 0 && len(v) > n:
			return fmt.Sprintf("cut it to %d bits", n)
		case n >= 0 && len(v) < n && t.base == "bit":
			return fmt.Sprintf("pad it to %d bits on the right", n)
		}
	case "money":
		// money keeps the fractional digits of the database's
		// lc_monetary (moneyDigits) and rounds the rest away.
		if !hasScale(v, c.moneyDigits) {
			return fmt.Sprintf("round it to %d decimal places", c.moneyDigits)
		}
	case `"char"`:
		// The one-byte internal type keeps a string's first byte (and
		// reads \101 as A).
		if len(v) > 1 {
			return "keep only its first byte"
		}
	case "interval":
		if p := t.mod(0); p >= 0 && fractionBeyond(v, p) {
			return fmt.Sprintf("round it to %d fractional digits", p)
		}
	case "name":
		if len(v) > 63 {
			return "cut it to 63 bytes"
		}
	case "jsonb":
		if duplicateKey(v) {
			return "keep only the last of a JSON object's keys given twice"
		}
	case "real":
		if roundsFloat(c.srcType, v, 32) {
			return "round it to single precision"
		}
	case "double precision":
		if roundsFloat(c.srcType, v, 64) {
			return "round it to double precision"
		}
	}
	if fields, ok := strings.CutPrefix(c.typ.base, "interval "); ok && c.srcType == "TIME" {
		if p := c.typ.mod(0); p >= 0 && fractionBeyond(v, p) {
			return fmt.Sprintf("round it to %d fractional digits", p)
		}
		if dropsTime(v, fields) {
			return "drop the parts of the time finer than its " + fields[strings.LastIndexByte(fields, ' ')+1:]
		}
	}
	return ""
}

// unfit says why every value of the column could be changed in a way
// no check of a value sees, or "": an interval restricted to fields
// (interval hour to minute) drops the finer parts of what it is given,
// which only a TIME's text is read for (see change).
func (c *column) unfit() string {
	if c.cfg.Lossy || c.lookup != nil || c.srcType == "" {
		return ""
	}
	if strings.HasPrefix(c.typ.base, "interval ") && c.srcType != "TIME" {
		return fmt.Sprintf("%s drops the parts of an interval finer than its fields, which are not checked for a %s; "+
			"map it to interval, or set lossy: true", c.typ.full, c.srcType)
	}
	return ""
}

// spatial says why column c cannot be read as it is when its source is
// a spatial type (POINT, GEOMETRY…), or "": MySQL sends those in its own
// storage form, a 4-byte SRID before the WKB, which no PostgreSQL type
// and no service reads as such. Copied into bytea it was those bytes,
// silently; into anything else every row failed. Lossy or not: the
// form is no value at all outside MySQL, nor made text by a transform.
func (c *column) spatial() string {
	if c.srcType != "GEOMETRY" && c.rawType != "GEOMETRY" {
		return ""
	}
	return fmt.Sprintf("%s is a spatial type, which MySQL sends in its own storage form (a 4-byte SRID, then WKB) that nothing else reads; "+
		"give a query that reads ST_AsBinary(%s) (WKB), ST_AsText(%s) (WKT) and, if it matters, ST_SRID(%s)", c.cfg.From, c.cfg.From, c.cfg.From, c.cfg.From)
}

// dropsTime reports whether an interval of the given fields (hour to
// minute, day…) drops a non-zero part of TIME text v ([-]H:MM:SS[.f]).
func dropsTime(v []byte, fields string) bool {
	parts := strings.Split(strings.TrimPrefix(string(v), "-"), ":")
	if len(parts) != 3 {
		return false // not a TIME's text: the target judges it
	}
	h, m, sec := parts[0], parts[1], parts[2]
	nonZero := func(s string) bool { return strings.Trim(s, "0.") != "" }
	switch {
	case strings.HasSuffix(fields, "second"):
		return false
	case strings.HasSuffix(fields, "minute"):
		return nonZero(sec)
	case strings.HasSuffix(fields, "hour"):
		return nonZero(m) || nonZero(sec)
	}
	// day, month, year: an interval's time of day is gone.
	return nonZero(h) || nonZero(m) || nonZero(sec)
}

// zoneGiven matches a time's text that ends in a zone or an offset
// (10:00:00Z, 10:00+05:30, 10:00:00 America/New_York, 10:00 EST), not
// in AM or PM.
var zoneGiven = regexp.MustCompile(`\d:\d\d(?::\d\d(?:\.\d*)?)?\s*(?:[zZ]|[+-]\d\d(?::?\d\d){0,2}|\s[A-Za-z][A-Za-z_/+-]*)\s*$`)

// relativeTime matches the words PostgreSQL's date and time input reads
// as the moment it runs: text 'now' would become the time of the copy,
// and of each verify.
var relativeTime = regexp.MustCompile(`(?i)\b(?:now|today|tomorrow|yesterday)\b`)

var ampm = regexp.MustCompile(`(?i)\s[ap]\.?m\.?\s*$`)

// givesZone reports whether a time's text ends in a zone or an offset.
func givesZone(v []byte) bool { return zoneGiven.Match(v) && !ampm.Match(v) }

// roundsFloat reports whether a float of bits bits cannot hold source
// value v of MySQL type srcType. A FLOAT or DOUBLE is its binary value,
// which a DOUBLE keeps and a real keeps only if it is a float's; any
// other value (DECIMAL, an integer, text) is a decimal number, kept only
// if the float's shortest text, which is what PostgreSQL shows, is that
// same number: 0.1 is, 9007199254740993 is not (it reads back …992).
// Text that is not a finite number is left to the target.
func roundsFloat(srcType string, v []byte, bits int) bool {
	switch srcType {
	case "FLOAT":
		return false
	case "DOUBLE":
		d, err := strconv.ParseFloat(string(v), 64)
		return bits == 32 && err == nil && float64(float32(d)) != d && !math.IsInf(d, 0)
	}
	exact, ok := new(big.Rat).SetString(strings.TrimSpace(string(v)))
	if !ok {
		return false
	}
	f, _ := strconv.ParseFloat(strings.TrimSpace(string(v)), bits)
	if math.IsInf(f, 0) {
		return false // out of range: the target refuses it
	}
	shown, _ := new(big.Rat).SetString(strconv.FormatFloat(f, 'g', -1, bits))
	return shown.Cmp(exact) != 0
}

// dateTime reports whether v is shaped like MySQL's DATETIME text,
// YYYY-MM-DD HH:MM:SS[.ffffff].
func dateTime(v []byte) bool {
	return len(v) >= 19 && v[4] == '-' && v[7] == '-' && (v[10] == ' ' || v[10] == 'T') && v[13] == ':' && v[16] == ':'
}

// leadingDate matches the dates PostgreSQL reads at the start of a
// date and time's text, whatever follows: 2024-03-10 (MySQL's own),
// 03/10/2024, 10.03.2024, 20240310, and a Julian day (J2460380).
var leadingDate = regexp.MustCompile(`^\s*(?:\d{1,5}-\d{1,2}-\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{1,5}|\d{8}|[jJ]\d+)`)

// timeOfDay reports whether the text of a date, a DATETIME's or one an
// application wrote, gives a time of day other than midnight, or an
// offset, which a date drops: any digit but 0 after its leading date
// (2024-03-10 10:00, 2024-03-10T10:00, 2024-03-10 1000, which
// PostgreSQL reads as 10:00, and the half day of J2460380.5), or from
// the digits before its first colon on (Mar 10 2024 10:00). 12:00 AM
// is midnight, but is refused too: only lossy says a value may lose a
// part.
func timeOfDay(v []byte) bool {
	if m := leadingDate.FindIndex(v); m != nil {
		v = v[m[1]:]
	} else if i := bytes.IndexByte(v, ':'); i >= 0 {
		for i > 0 && v[i-1] >= '0' && v[i-1] <= '9' {
			i--
		}
		v = v[i:]
	} else {
		return false
	}
	return bytes.ContainsAny(v, "123456789")
}

// givesDate reports whether the text of a time gives a date, which a
// time drops: a DATETIME's, or one an application wrote (03/10/2024
// 10:00 AM, J2460380 10:00).
func givesDate(v []byte) bool { return leadingDate.Match(v) }

// skipped reports whether DATETIME or DATE text v is a wall time that
// zone's clocks skip when they go forward (02:30 on a spring night in
// New York, midnight in Santiago): no instant has it, so PostgreSQL
// takes it at the offset before the change and it reads back an hour
// later. A wall time that occurs twice is not refused: it becomes the
// later instant, and reads back as itself.
func skipped(v []byte, zone *time.Location) bool {
	var wall time.Time
	err := errors.New("no layout")
	// A DATETIME's or DATE's text, and the same written as text with a T
	// or without seconds; other spellings PostgreSQL reads are not
	// checked.
	for _, layout := range []string{time.DateTime, "2006-01-02T15:04:05", "2006-01-02 15:04", "2006-01-02T15:04", time.DateOnly} {
		if len(v) == len(layout) || len(v) > len(layout) && v[len(layout)] == '.' && layout[len(layout)-3] == ':' {
			if wall, err = time.Parse(layout, string(v[:len(layout)])); err == nil {
				break
			}
		}
	}
	if err != nil {
		return false // not a time PostgreSQL takes, or a spelling not checked
	}
	at := time.Date(wall.Year(), wall.Month(), wall.Day(), wall.Hour(), wall.Minute(), wall.Second(), 0, zone)
	return at.Hour() != wall.Hour() || at.Minute() != wall.Minute() || at.Day() != wall.Day()
}

// fractionBeyond reports whether a time's fractional seconds have a
// non-zero digit past the first p.
func fractionBeyond(v []byte, p int) bool {
	dot := bytes.LastIndexByte(v, '.')
	if dot < 0 || bytes.IndexByte(v[dot:], ':') >= 0 {
		return false
	}
	for i, b := range v[dot+1:] {
		if b < '0' || b > '9' {
			break
		}
		if i >= p && b != '0' {
			return true
		}
	}
	return false
}

// hasScale reports whether decimal text v has no non-zero digit past
// scale decimal places (a number in exponent form, as a DOUBLE reads, is
// worked out exactly). Text that is not a number counts as fitting: the
// target refuses it.
func hasScale(v []byte, scale int) bool {
	if bytes.ContainsAny(v, "eE") {
		r, ok := new(big.Rat).SetString(string(v))
		if !ok {
			return true
		}
		r.Mul(r, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)))
		return r.IsInt()
	}
	dot := bytes.IndexByte(v, '.')
	if dot < 0 {
		return true
	}
	for _, b := range v[min(len(v), dot+1+scale):] {
		if b != '0' {
			return false
		}
	}
	return true
}

// duplicateKey reports whether a JSON document has an object with a key
// given twice, which jsonb collapses to the last while MariaDB's JSON
// functions read the first. Documents that do not parse are left to the
// target.
func duplicateKey(v []byte) bool {
	type frame struct {
		keys    map[string]bool // nil for an array
		wantKey bool
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var stack []frame
	// valueDone notes that the innermost object got a member's value.
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].wantKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			return false // the end, or not JSON
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{keys: map[string]bool{}, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
			continue
		}
		if key, ok := tok.(string); ok && len(stack) > 0 && stack[len(stack)-1].wantKey {
			top := &stack[len(stack)-1]
			if top.keys[key] {
				return true
			}
			top.keys[key], top.wantKey = true, false
			continue
		}
		valueDone()
	}
}

// validTime reports whether MySQL's text v of a DATE, DATETIME,
// TIMESTAMP or TIME is a value PostgreSQL's date and time types take:
// not a zero or invalid date (0000-00-00, 2024-02-30, which MySQL keeps
// under a lenient sql_mode), not year 0, not a TIME beyond a day.
func validTime(srcType string, v []byte) bool {
	if srcType == "TIME" {
		s := string(v)
		h, rest, ok := strings.Cut(s, ":")
		n, err := strconv.Atoi(h)
		return ok && err == nil && len(h) == 2 && (n < 24 || n == 24 && strings.Trim(rest, "0:.") == "")
	}
	d, ok := realDate(v)
	return ok && d.Year() >= 1
}

// isDateType reports whether MySQL's type holds a date.
func isDateType(mysqlType string) bool {
	return mysqlType == "DATE" || mysqlType == "DATETIME" || mysqlType == "TIMESTAMP"
}

// dateShaped reports whether text v begins as a date's text does,
// YYYY-MM-DD, real or not.
func dateShaped(v []byte) bool { return len(v) >= 10 && v[4] == '-' && v[7] == '-' }

// realDate reads the date of MySQL's text v of a DATE, DATETIME or
// TIMESTAMP, and reports whether it is one: MySQL keeps 0000-00-00,
// 2024-00-10 and 2024-02-30 under a lenient sql_mode.
func realDate(v []byte) (time.Time, bool) {
	if len(v) < len(time.DateOnly) {
		return time.Time{}, false
	}
	d, err := time.Parse(time.DateOnly, string(v[:len(time.DateOnly)]))
	return d, err == nil
}
