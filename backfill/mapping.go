package backfill

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	"strangler/config"
)

// This file decides, per column, everything about a value on its way from
// the source to the target: how MySQL reads it, what the target type
// would change about it (checks.go), how it is staged, how the target
// converts it, and when two values are the same. The backfill and verify
// both use these, so what verify calls equal is what a backfill leaves
// alone.

// column is one target column and where its value comes from.
type column struct {
	name     string
	cfg      config.Column
	redacted bool
	// sourceExpr computes the value on MySQL, transforms and default
	// included, so that backfill and verify read exactly the same value.
	sourceExpr string
	// srcType is MySQL's type of the value read (sourceExpr), as the
	// driver names it: DATETIME, DOUBLE, BINARY…; "" for a default alone.
	srcType string
	// rawType is MySQL's type of the source column itself, before any
	// transform: TRIM of a TIMESTAMP is a VARCHAR, but its text is still
	// the instant's wall time in UTC (connectSource), not one in
	// source_time_zone.
	rawType string
	// typ is the target column's type.
	typ pgType
	// nondeterministic is the column's collation, quoted, when it has
	// equal values that are not byte-equal (a case-insensitive ICU
	// collation); "" otherwise.
	nondeterministic string
	// zone is the time zone appended to a DATETIME, a DATE or text giving
	// no zone of its own going into a timestamptz column
	// (source_time_zone); nil when none is (see inZone).
	zone *time.Location
	// lookup translates the value through another target table.
	lookup *lookup
	// moneyDigits are the fractional digits a money column keeps (the
	// target database's lc_monetary).
	moneyDigits int
}

type lookup struct {
	table   string // quoted
	key     string // quoted column of the lookup table matched against the value
	keyType string // its type
	column  string // quoted column whose value is stored
}

// pgType is a target column's type as format_type writes it, taken apart:
// "timestamp(0) without time zone" is base "timestamp", mods [0], and
// "public.citext" is base "citext". For a domain, full is the domain,
// which values are cast to so that its constraints apply, and the rest
// is the type under it: a domain over varchar(3) cuts what it is cast
// from as varchar(3) does, so it is checked as one.
type pgType struct {
	full string
	base string
	mods []int
	tz   bool
}

var typeSyntax = regexp.MustCompile(`^(?:[^.(]+\.)?([a-z][a-z0-9_ ]*?)(?:\((\d+)(?:,(\d+))?\))?( with time zone| without time zone)?$`)

// parseType takes apart type full, whose values are of type under (full
// itself unless it is a domain).
func parseType(full, under string) pgType {
	t := pgType{full: full, base: under}
	m := typeSyntax.FindStringSubmatch(under)
	if m == nil {
		return t // arrays and the like: compared as text, never checked
	}
	t.base, t.tz = m[1], m[4] == " with time zone"
	for _, s := range m[2:4] {
		if n, err := strconv.Atoi(s); err == nil {
			t.mods = append(t.mods, n)
		}
	}
	return t
}

// mod is the type's i-th modifier, or -1 when it has none.
func (t pgType) mod(i int) int {
	if i < len(t.mods) {
		return t.mods[i]
	}
	return -1
}

// isBytes reports whether the column's values are binary.
func (c *column) isBytes() bool { return c.typ.base == "bytea" }

// stageType is how the column is staged: as text, cast to its type when
// upserted (so a bad value fails one statement that can be retried row by
// row, not the COPY), or as bytea for binary values.
func (c *column) stageType() string {
	if c.isBytes() {
		return "bytea"
	}
	return "text"
}

// valueExpr is staged value v of the column as the target stores it. Text
// goes to text and varchar columns by assignment, which refuses a value
// too long for varchar(n) where an explicit cast would cut it short
// (unless the column is lossy); other types are cast with their input
// function, as COPY would parse them. char(n) is cast too: its value is
// padded, so 'abc  ' and 'abc' are one char(5) value, and only the cast
// makes staged text compare as that (refuse has already turned away
// values too long for it).
func (c *column) valueExpr(v string) string {
	switch {
	case c.isBytes():
		return v
	case c.typ.base == "text" || c.typ.base == "character varying":
		if c.cfg.Lossy && c.typ.mod(0) >= 0 {
			return v + "::" + c.typ.full
		}
		return v
	}
	return v + "::" + c.typ.full
}

// identityEq reports whether the type's equality is identity: equal values
// are the same value, which text output would show alike. Not so for
// floats (0 = -0), numeric (1.0 = 1.00), jsonb (1.0 = 1), char(n), citext,
// nondeterministic collations, and json, which has no equality at all.
func (c *column) identityEq() bool {
	switch c.typ.base {
	case "smallint", "integer", "bigint", "boolean", "date", "bytea", "uuid",
		"timestamp", "bit", "bit varying":
		return true
	case "time":
		// time with time zone too: its equality is the time and the
		// zone both ('10:00+00' is not '11:00+01').
		return true
	case "text", "character varying":
		return c.nondeterministic == ""
	}
	return false
}

// same is the SQL condition that a and b, two values of the column's
// type, are the same value: by the type's equality where that is
// identity, by their text's bytes otherwise.
func (c *column) same(a, b string) string {
	if c.identityEq() {
		return a + " IS NOT DISTINCT FROM " + b
	}
	return byteText(a) + " IS NOT DISTINCT FROM " + byteText(b)
}

// byteText is SQL value e as text that compares byte by byte. A cast to
// text keeps a column's collation, and a nondeterministic one (an ICU
// collation ignoring case, which also calls NFC and NFD spellings equal)
// would call 'abc' and 'ABC' the same text; "C" compares the bytes.
func byteText(e string) string { return e + `::text COLLATE "C"` }

// foldedUUID reports whether text source values go into a uuid column,
// whose text is one spelling of many: A0EEBC99-…, {a0eebc99-…} and
// a0eebc999c0b… are all stored as a0eebc99-9c0b-…
func (c *column) foldedUUID() bool { return c.typ.base == "uuid" && isTextType(c.srcType) }

// keyText is staged key text (SQL) as the target key's text shows it
// when the key was stored as itself: a uuid's text in its one spelling,
// lower-case, without braces, hyphens at 8-4-4-4-12 (text that is no
// uuid stays as it is: the target refuses it); a number going into a
// float, or a float into a numeric, in the target type's text.
func (c *column) keyText(staged string) string {
	switch {
	case c.foldedUUID():
		return `regexp_replace(translate(lower(` + staged + `), '{}-', ''), '^([0-9a-f]{8})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{4})([0-9a-f]{12})$', '\1-\2-\3-\4-\5')`
	case c.numberByValue():
		// The driver writes DOUBLE 1234567 as 1.234567e+06, the target
		// as 1234567: the same value, whose text is the target's own
		// (change refuses a number the type would round, unless lossy).
		return byteText("(" + staged + ")::" + c.typ.full)
	}
	return staged
}

// numberByValue reports whether a key is matched by the number it is
// rather than by its text: a MySQL number going into a float, or a FLOAT
// or DOUBLE into a numeric.
func (c *column) numberByValue() bool {
	return c.floatFromNumber() || c.typ.base == "numeric" && (c.srcType == "DOUBLE" || c.srcType == "FLOAT")
}

// floatFromNumber reports whether MySQL numbers (not text) go into a
// real or double precision column.
func (c *column) floatFromNumber() bool {
	switch c.typ.base {
	case "real", "double precision":
		return c.srcType == "DOUBLE" || c.srcType == "FLOAT" || c.srcType == "DECIMAL" || kindOf(c.srcType) == intKey
	}
	return false
}

// uuidSpelling is MySQL's expression for the uuid a text key spells,
// as keyText writes it but without the hyphens: keys equal by it are one
// uuid.
func uuidSpelling(key string) string {
	return "LOWER(REPLACE(REPLACE(REPLACE(" + key + ", '-', ''), '{', ''), '}', ''))"
}

// inZone reports whether source value v goes into the target in the
// column's zone (source_time_zone): a DATETIME or DATE always, text only
// when it gives no zone or offset of its own and is no word PostgreSQL
// reads as the moment it runs.
func (c *column) inZone(v []byte) bool {
	if c.zone == nil {
		return false
	}
	return !isTextType(c.srcType) || !givesZone(v) && !relativeTime.Match(v) && !timeWord.Match(v)
}

// timeWord matches the special values PostgreSQL's timestamptz reads
// whole: infinity, -infinity and epoch (an instant in UTC), which take
// no zone after them.
var timeWord = regexp.MustCompile(`(?i)^\s*[-+]?(?:infinity|epoch)\s*$`)

// binaryUUID reports whether binary source values go into a uuid column,
// staged in the uuid's text form.
func (c *column) binaryUUID() bool { return c.typ.base == "uuid" && isBinaryType(c.srcType) }

// encode is a checked source value as it is staged: a binary UUID in its
// text form, a DATETIME, DATE or zone-less text going into a timestamptz
// with its time zone.
func (c *column) encode(v []byte) []byte {
	switch {
	case v == nil:
		return nil
	case c.inZone(v):
		return append(append(v[:len(v):len(v)], ' '), c.zone.String()...)
	case c.numberToInteger():
		return integerText(v)
	case c.isText():
		return c.asText(v)
	case c.binaryUUID():
		h := hex.EncodeToString(v)
		return []byte(h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:])
	}
	return v
}

// isText reports whether the column's type is a string type.
func (c *column) isText() bool { return c.typ.isText() }

// isText reports whether the type is a string type.
func (t pgType) isText() bool {
	switch t.base {
	case "text", "character varying", "character", "citext":
		return true
	}
	return false
}

// asText is source value v as a string column gets it: a FLOAT or
// DOUBLE without the exponent the driver writes from 1e+06 on, as the
// API gets it (plainNumber); any other value as it is. The checks see
// this text, so that a length is that of what is stored.
func (c *column) asText(v []byte) []byte {
	if c.isText() {
		return plainNumber(c.srcType, v)
	}
	return v
}

// plainNumber is a FLOAT's or DOUBLE's text (Go's shortest, which the
// driver writes in exponent form from 1e+06 on: 1.6777216e+07) without
// the exponent while |v| is within [1e-6, 1e21), as JavaScript writes a
// number: a service reading it into an integer (Go's encoding/json, a
// Java long) refuses 1.6777216e+07 but takes 16777216. The digits, and
// so the value, are the same.
func plainNumber(srcType string, v []byte) []byte {
	bits := map[string]int{"FLOAT": 32, "DOUBLE": 64}[srcType]
	if bits == 0 || !bytes.ContainsAny(v, "eE") {
		return v
	}
	f, err := strconv.ParseFloat(string(v), bits)
	if a := math.Abs(f); err != nil || a >= 1e21 || a < 1e-6 {
		return v
	}
	return strconv.AppendFloat(nil, f, 'f', -1, bits)
}

// numberToInteger reports whether the column's values are numbers that
// may have a fraction (DECIMAL, FLOAT, DOUBLE) going into an integer
// type, whose input takes neither 16777216.000 nor 1.6777216e+07, as
// MySQL sends a FLOAT.
func (c *column) numberToInteger() bool {
	switch c.typ.base {
	case "smallint", "integer", "bigint":
		return c.srcType == "DECIMAL" || c.srcType == "FLOAT" || c.srcType == "DOUBLE"
	}
	return false
}

// integerText is decimal text v (exponent form too) as an integer's text,
// rounded half away from zero, as PostgreSQL rounds a numeric into an
// integer; change has refused a fraction unless the column is lossy.
// Text that is no number is left as it is, for the target to refuse.
func integerText(v []byte) []byte {
	r, ok := new(big.Rat).SetString(string(v))
	if !ok {
		return v
	}
	q, m := new(big.Int).QuoRem(r.Num(), r.Denom(), new(big.Int))
	if m.Sign() != 0 && new(big.Int).Mul(new(big.Int).Abs(m), big.NewInt(2)).Cmp(r.Denom()) >= 0 {
		q.Add(q, big.NewInt(int64(m.Sign())))
	}
	return []byte(q.String())
}

// keyKind is what a source key holds, which decides how keys are ordered,
// split and shown.
type keyKind int

const (
	textKey keyKind = iota
	intKey
	binaryKey
)

func kindOf(mysqlType string) keyKind {
	switch {
	case isBinaryType(mysqlType):
		return binaryKey
	case strings.Contains(mysqlType, "INT"):
		return intKey
	}
	return textKey
}

// isTextType reports whether MySQL sends values of the type as text in
// the connection's character set.
func isTextType(mysqlType string) bool {
	switch mysqlType {
	case "CHAR", "VARCHAR", "TEXT", "TINYTEXT", "MEDIUMTEXT", "LONGTEXT", "ENUM", "SET", "JSON":
		return true
	}
	return false
}

// timeKey reports whether the column, as a key, holds MySQL dates or
// times going into a date or time type.
func (c *column) timeKey() bool {
	return isTemporalType(c.srcType) && (c.typ.base == "timestamp" || c.typ.base == "date" || c.typ.base == "time")
}

// wallTime reports whether the column's values are wall times in no
// zone, which source_time_zone places: a DATETIME, a DATE, or text
// (a date and time written as text by an application, in its own zone)
// unless it is a TIMESTAMP's, whose text is in UTC.
func (c *column) wallTime() bool {
	switch {
	case c.srcType == "DATETIME" || c.srcType == "DATE":
		return true
	case isTextType(c.srcType) && c.srcType != "JSON":
		return c.rawType != "TIMESTAMP"
	}
	return false
}

// utcWallTime reports whether the column's values are TIMESTAMPs,
// instants read in UTC (connectSource), or text a transform made of
// them, going into a date or time type without time zone: what those
// keep is the wall time in UTC.
func (c *column) utcWallTime() bool {
	switch c.typ.base {
	case "timestamp", "time":
		if c.typ.tz {
			return false
		}
	case "date":
	default:
		return false
	}
	return c.srcType == "TIMESTAMP" || c.rawType == "TIMESTAMP" && isTextType(c.srcType)
}

// isTemporalType reports whether MySQL's type is a date or time.
func isTemporalType(mysqlType string) bool {
	switch mysqlType {
	case "DATE", "DATETIME", "TIMESTAMP", "TIME":
		return true
	}
	return false
}

func isBinaryType(mysqlType string) bool {
	switch mysqlType {
	case "BINARY", "VARBINARY", "TINYBLOB", "BLOB", "MEDIUMBLOB", "LONGBLOB", "BIT":
		return true
	}
	return false
}

// exactKey reports whether the target key stores each staged key as
// exactly itself, with an equality that is identity: then no two source
// keys can meet in one target row, and the key needs no check per batch
// (see keyCheckSQL).
func exactKey(kind keyKind, c *column) bool {
	if !c.identityEq() {
		return false
	}
	if c.timeKey() {
		// A time's value is its identity in MySQL: two keys are never
		// one value, and its text is not the target's (10:00:00.500000
		// is 10:00:00.5, a timestamptz adds its offset). Into a date or
		// time type that keeps it whole (change refuses rounding and
		// wall times the zone skips; plan refuses a lossy one) no two
		// keys meet, so keys are matched by value.
		return c.lookup == nil
	}
	switch kind {
	case intKey:
		return c.typ.base == "smallint" || c.typ.base == "integer" || c.typ.base == "bigint"
	case binaryKey:
		return c.isBytes()
	}
	return c.typ.base == "text" || c.typ.base == "character varying"
}

// sourceExpr is the MySQL expression for a column's value: the source
// column (or NULL), each transform in turn, then the default for NULL. A
// BIT column, which MySQL sends as bytes, is read as those bytes into
// bytea, as binary digits into bit(n), and as an integer otherwise. A
// YEAR going into a string type or looked up is read as MySQL writes it
// (yearText).
func sourceExpr(c config.Column, rawType string, typ pgType) string {
	e := "NULL"
	if c.From != "" {
		e = "src." + myIdent(c.From)
	}
	if rawType == "YEAR" && (typ.isText() || c.Lookup != nil) {
		// A lookup key of a number type takes 0000 as 0, and one of a
		// string type holds the text a key copied into it has.
		e = yearText(e)
	}
	if rawType == "BIT" {
		switch {
		case typ.base == "bytea":
		case typ.base == "bit" && typ.mod(0) > 0:
			// Padded on the left to n digits, never cut (LPAD cuts what is
			// longer): a value too wide for bit(n) must reach change.
			e = fmt.Sprintf("LPAD(BIN(%[1]s + 0), GREATEST(%[2]d, LENGTH(BIN(%[1]s + 0))), '0')", e, typ.mod(0))
		case typ.base == "bit" || typ.base == "bit varying":
			e = "BIN(" + e + " + 0)"
		default:
			e = "(" + e + " + 0)"
		}
	}
	return transformed(e, c)
}

// yearText is the MySQL expression for YEAR e's text as MySQL writes it,
// where the driver sends a YEAR as its number: year 0000 (the year a
// lenient legacy stores for one it could not read) comes as 0, which
// MySQL, and a service reading two-digit years as it does, reads as the
// year 2000; MariaDB's YEAR(2) writes 2005 as 05, sent as 5.
func yearText(e string) string { return "CAST(" + e + " AS CHAR)" }

// transformed applies a column's transforms and default to the MySQL
// expression e.
func transformed(e string, c config.Column) string {
	for _, tr := range c.Transform {
		switch tr {
		case config.TransformTrim:
			e = "TRIM(" + e + ")"
		case config.TransformLower:
			e = "LOWER(" + e + ")"
		case config.TransformUpper:
			e = "UPPER(" + e + ")"
		case config.TransformNullIfEmpty:
			// Not NULLIF(e, ''): under a PAD SPACE collation, MySQL's
			// default, '   ' equals '' and would become NULL too.
			e = "IF(LENGTH(" + e + ") = 0, NULL, " + e + ")"
		}
	}
	if c.Default != nil {
		e = "COALESCE(" + e + ", " + myString(*c.Default) + ")"
	}
	return e
}
