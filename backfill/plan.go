package backfill

import (
	"cmp"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"strangler/config"
)

// table is one configured table, checked against both databases and turned
// into the SQL that reads and writes it.
type table struct {
	cfg   *config.BackfillTable
	index int // in the backfill section, for error messages
	name  string
	cols  []column // target columns; cols[0] is the target key
	// source is the FROM clause, aliased src.
	source string
	// sourceKey is the source key column, qualified with src.
	sourceKey string
	// key is what the source key holds: integers can be split into ranges,
	// binary keys are shown in hex.
	key keyKind
	// keyType is MySQL's type of the source key, as the driver names it.
	keyType string
	// readTypes are MySQL's types of the key and of each column's
	// sourceExpr, as planned: a read that finds others stops (samePlan).
	readTypes []string
	// nullKeys is set when the key can be NULL and null_keys is skip: those
	// rows are counted as failed, never read.
	nullKeys bool
	// exactKey is set when the target key stores every staged key as itself
	// with an equality that is identity (see exactKey).
	exactKey bool
	// keyEq is the equality operator of the target key's unique index,
	// schema-qualified (OPERATOR(public.=) for citext): the equality ON
	// CONFLICT uses, which a plain = may not resolve to when the type's
	// schema is not on the search path.
	keyEq string
	// redacted is set when any column is redacted: then no message text
	// from the target goes into a failure reason unless it is known to
	// hold no value (see describe).
	redacted bool
	// target is the quoted target table.
	target string
	// after lists the tables that must be copied first: those this one's
	// lookups read.
	after []string
}

// cutFor names what t's key ranges and checkpoints stand for: its source,
// its key and the key's kind (which orders the checkpoints' bytes), its
// target table and target key, and its columns' mapping; for a table
// sent to the API, its requests' method, path and body mapping, and
// group_by (which cuts a shared run's groups). Ranges cut for another
// are of another copy: going on from them would skip rows, or leave the
// rows below the checkpoints as the old mapping wrote them
// (ledger.ranges), or as the old requests sent them. lossy is no part
// of it: a row it lets through was in the ledger, which every run
// retries, and one copied without it is the same with it. Nor is the
// API's url (nor its headers): the ledger of rows sent knows a row by
// its request alone, and would find each sent all the same.
func (t *table) cutFor() string {
	parts := []string{t.source, t.sourceKey, strconv.Itoa(int(t.key)), t.target, t.cfg.TargetKey, withoutLossy(t.cfg.Columns)}
	if a := t.cfg.TargetAPI; a != nil {
		parts = append(parts, a.Method, a.Path, withoutLossy(a.Body), a.GroupBy)
	}
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:])
}

// withoutLossy is a mapping's JSON, lossy left out (cutFor).
func withoutLossy(m map[string]config.Column) string {
	cols := maps.Clone(m)
	for name, c := range cols {
		c.Lossy = false
		cols[name] = c
	}
	mapping, _ := json.Marshal(cols) // maps marshal in key order
	return string(mapping)
}

// plan checks the backfill section's tables against both databases and
// prepares them, in dependency order.
func plan(ctx context.Context, cfg *config.Backfill, only []string, src *sql.DB, dst *pgxpool.Pool) ([]*table, error) {
	var tables []*table
	var errs []error
	for i := range cfg.Tables {
		if cfg.Tables[i].TargetAPI != nil {
			// Sent to the API by runAPI; nothing to copy or compare here.
			if slices.Contains(only, cfg.Tables[i].Name) {
				errs = append(errs, fmt.Errorf("table %q is sent to the API, not copied into the target database", cfg.Tables[i].Name))
			}
			continue
		}
		t, err := prepare(ctx, cfg, i, src, dst)
		if err != nil && connectionLost(err) {
			// Each table after would wait as long (batch_timeout, for a
			// database gone silent) to fail the same way.
			return nil, sourceLost(cfg, err)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		tables = append(tables, t)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	tables, err := ordered(tables)
	if err != nil {
		return nil, err
	}
	if len(only) > 0 {
		tables = slices.DeleteFunc(tables, func(t *table) bool { return !slices.Contains(only, t.name) })
	}
	return tables, nil
}

// planResuming is plan on the resumption policy p: a connection lost
// while planning (a server restarting, a DBA's KILL) plans again whole,
// and one still lost after the last try with the source or the target
// answering no ping stops the run, or verify, saying which database is
// gone.
func planResuming(ctx context.Context, cfg *config.Backfill, only []string, src *sql.DB, dst *pgxpool.Pool,
	p policy, log *slog.Logger, verify bool) (tables []*table, err error) {
	err = p.resumingGone(ctx, log, "the planning", []any{"step", "the planning"}, pinging(src, dst, verify), func() (err error) {
		tables, err = plan(ctx, cfg, only, src, dst)
		return err
	})
	return tables, err
}

func prepare(ctx context.Context, cfg *config.Backfill, i int, src *sql.DB, dst *pgxpool.Pool) (*table, error) {
	tc := &cfg.Tables[i]
	t := &table{cfg: tc, index: i, name: tc.Name, target: pgIdent(tc.To), sourceKey: "src." + myIdent(tc.Key)}
	// at places a problem at the field of the file it concerns.
	at := func(field string) string { return cfg.Locate(fmt.Sprintf("backfill.tables[%d].%s", i, field)) }
	sourceField := "from"
	if tc.Query != "" {
		t.source = querySource(tc.Query)
		sourceField = "query"
	} else {
		t.source = myIdent(tc.From) + " AS src"
	}
	targetCols, err := targetColumns(ctx, dst, tc.To)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", at("to"), targetLost("reading its columns", err))
	}
	// The source's own types decide how some values are read (BIT).
	raw, err := sourceTypes(ctx, src, t, tc.Columns)
	if err != nil {
		return nil, fmt.Errorf("%s: reading the source: %w", at(sourceField), err)
	}
	for _, name := range tc.ColumnNames() {
		c := column{name: name, cfg: tc.Columns[name], redacted: tc.Redacted(name)}
		tcol, ok := targetCols[name]
		switch {
		case !ok:
			return nil, fmt.Errorf("%s: no column %q in target table %s%s", at("columns."+name), name, tc.To, otherCase(columnInOtherCase(targetCols, name)))
		case tcol.generated:
			return nil, fmt.Errorf("%s: target column %q is generated; it cannot be written", at("columns."+name), name)
		case tcol.identityAlways:
			// COPY takes a value for it and INSERT refuses one: the direct
			// path wrote a fresh batch, the staged path (a re-run, a
			// retry, a batch with rows present) stopped the table.
			return nil, fmt.Errorf("%s: target column %q is an identity column GENERATED ALWAYS, which only the target may write; "+
				"leave it out of columns, or make it GENERATED BY DEFAULT and set its sequence past the values copied", at("columns."+name), name)
		}
		c.typ, c.nondeterministic = parseType(tcol.typ, tcol.under), tcol.nondeterministic
		c.rawType = raw[c.cfg.From]
		c.sourceExpr = sourceExpr(c.cfg, c.rawType, c.typ)
		if l := c.cfg.Lookup; l != nil {
			lcols, err := targetColumns(ctx, dst, l.Table)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", at("columns."+name+".lookup.table"), err)
			}
			key, okKey := lcols[l.Key]
			_, okCol := lcols[l.Column]
			if !okKey || !okCol {
				field, col := "key", l.Key
				if okKey {
					field, col = "column", l.Column
				}
				return nil, fmt.Errorf("%s: table %s has no column %q%s", at("columns."+name+".lookup."+field), l.Table, col, otherCase(columnInOtherCase(lcols, col)))
			}
			// A value finding two rows would join the row twice: the copy
			// would fail its whole batch (ON CONFLICT cannot affect a row
			// a second time) and verify count the row twice.
			if eq, err := uniqueKeyEquality(ctx, dst, l.Table, l.Key); err != nil || eq == "" {
				if err == nil {
					err = fmt.Errorf("%s has no unique index on %q alone, so a value could find several rows", l.Table, l.Key)
				}
				return nil, fmt.Errorf("%s: %w", at("columns."+name+".lookup.key"), err)
			}
			c.lookup = &lookup{table: pgIdent(l.Table), key: pgIdent(l.Key), keyType: key.typ, column: pgIdent(l.Column)}
			dep, err := tableInto(ctx, dst, cfg, l.Table)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", at("columns."+name+".lookup.table"), err)
			}
			if dep != "" && dep != tc.Name {
				t.after = append(t.after, dep)
			}
		}
		t.redacted = t.redacted || c.redacted
		t.cols = append(t.cols, c)
	}
	for name, tcol := range targetCols {
		if _, mapped := tc.Columns[name]; !mapped && tcol.notNull && !tcol.hasDefault {
			return nil, fmt.Errorf("%s: target column %q is NOT NULL and has no default; map it here", at("columns"), name)
		}
	}
	if t.keyEq, err = uniqueKeyEquality(ctx, dst, tc.To, tc.TargetKey); err != nil {
		return nil, fmt.Errorf("%s: %w", at("target_key"), err)
	}
	if t.keyEq == "" {
		return nil, fmt.Errorf("%s: %s has no unique index on %q alone; rows are upserted on it", at("target_key"), tc.To, tc.TargetKey)
	}
	nullable, err := checkSource(ctx, src, t)
	if err != nil {
		return nil, fmt.Errorf("%s: reading the source: %w", at(sourceField), err)
	}
	if nullable {
		if tc.NullKeys != config.NullKeysSkip {
			return nil, fmt.Errorf("%s: %s can be NULL in the source, and a row without a key cannot be copied, checkpointed or compared; "+
				"key on a NOT NULL column, COALESCE it in a query, or set null_keys: skip to count such rows as failed", at("key"), tc.Key)
		}
		t.nullKeys = true
	}
	if err := checkKey(ctx, src, t); err != nil {
		return nil, fmt.Errorf("%s: %w", at("key"), err)
	}
	for i := range t.cols {
		c := &t.cols[i]
		if reason := cmp.Or(c.spatial(), c.unfit()); reason != "" {
			return nil, fmt.Errorf("%s: %s", at("columns."+c.name), reason)
		}
		if c.typ.base == "money" {
			// money's text takes the digits of lc_monetary, as its cast does.
			if err := dst.QueryRow(ctx, "SELECT scale('0.123456789'::money::numeric)").Scan(&c.moneyDigits); err != nil {
				return nil, fmt.Errorf("%s: %w", at("columns."+c.name), err)
			}
		}
	}
	if k := &t.cols[0]; (k.timeKey() || k.numberToInteger() || k.numberByValue()) && k.cfg.Lossy {
		return nil, fmt.Errorf("%s: a key cannot be lossy: two times or numbers rounded or cut to one would be one target key, "+
			"and the target's text cannot say which a row came from", at("columns."+k.name))
	}
	if k := &t.cols[0]; isTextType(k.srcType) && k.typ.base == "timestamp" && k.typ.tz && k.lookup == nil {
		// The target stores an instant and shows it at the session's
		// offset: a key's text is never what it stores (10:00 is
		// 15:00:00+00), so no row could be found by its key again, and
		// every row failed, one by one.
		return nil, fmt.Errorf("%s: %s is text, and %s stores an instant whose text is another (2024-03-10 10:00 is 2024-03-10 15:00:00+00): "+
			"no row could be found by its key again; give a query whose key is CAST(%s AS DATETIME(6)), a wall time in source_time_zone "+
			"(with null_keys: skip, as text that is no date casts to NULL), or key on another column", at("columns."+k.name), tc.Key, k.typ.full, tc.Key)
	}
	if t.cols[0].foldedUUID() {
		if err := checkFoldedUnique(ctx, src, t); err != nil {
			return nil, fmt.Errorf("%s: %w", at("key"), err)
		}
	}
	t.exactKey = exactKey(t.key, &t.cols[0])
	if z := cfg.SourceTimeZone; z != "" {
		if err := zoneKnown(ctx, dst, z); err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Locate("backfill.source_time_zone"), err)
		}
		// Go's copy of the zone finds the wall times its clock changes
		// skip (see change).
		loc, err := time.LoadLocation(z)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", cfg.Locate("backfill.source_time_zone"), err)
		}
		for i := range t.cols {
			c := &t.cols[i]
			if c.wallTime() && c.typ.base == "timestamp" && c.typ.tz {
				c.zone = loc
			}
			if i > 0 && c.utcWallTime() && !c.cfg.Lossy && c.lookup == nil && !fixedUTC(loc) {
				// A key is left alone: it is matched by its value, which
				// UTC's wall time keeps one to one.
				return nil, fmt.Errorf("%s: a TIMESTAMP is an instant, which %s would store as its wall time in UTC, "+
					"not in source_time_zone %s as DATETIME values are (23:00 on 10 March in New York is 03:00 on the 11th in UTC); "+
					"map it to timestamp with time zone, or set lossy: true to store its wall time in UTC",
					at("columns."+c.name), c.typ.full, z)
			}
			if c.srcType == "TIME" && c.typ.base == "time" && c.typ.tz && !c.cfg.Lossy && c.lookup == nil && !fixedUTC(loc) {
				// A time of day in the zone has an offset only on a date,
				// which a TIME lacks; timetz would give it UTC's.
				return nil, fmt.Errorf("%s: a TIME is a time of day in source_time_zone %s, whose offset depends on a date it lacks, "+
					"and %s would store it at UTC's offset (+00), another time; map it to time, or set lossy: true to store it at +00",
					at("columns."+c.name), z, c.typ.full)
			}
		}
	}
	return t, nil
}

// sourceTypes returns MySQL's type of each source column the mapping
// reads, by name, from a select that reads no row.
func sourceTypes(ctx context.Context, db *sql.DB, t *table, cols map[string]config.Column) (map[string]string, error) {
	var names, exprs []string
	for _, c := range cols {
		if c.From != "" && !slices.Contains(names, c.From) {
			names, exprs = append(names, c.From), append(exprs, "src."+myIdent(c.From))
		}
	}
	out := map[string]string{}
	if len(names) == 0 {
		return out, nil
	}
	types, err := selectTypes(ctx, db, "SELECT "+strings.Join(exprs, ", ")+" FROM "+t.source+" LIMIT 0")
	if err != nil {
		return nil, err
	}
	for i, ct := range types {
		out[names[i]] = ct.DatabaseTypeName()
	}
	return out, nil
}

// selectTypes runs query, a select that reads no row, and returns the
// types of the columns it would return.
func selectTypes(ctx context.Context, db *sql.DB, query string) ([]*sql.ColumnType, error) {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	return types, rows.Err()
}

// checkSource runs the table's select once without reading a row, which
// catches misspelt columns and bad queries before any work, notes each
// value's type and the key's, and reports whether the key can be NULL.
func checkSource(ctx context.Context, db *sql.DB, t *table) (nullable bool, err error) {
	types, err := noteReadTypes(ctx, db, t)
	if err != nil {
		return false, err
	}
	t.keyType = types[0].DatabaseTypeName()
	t.key = kindOf(t.keyType)
	for i := range t.cols {
		// A body lookup without from reads by the row's key: its value
		// has a type as much as one with from (numbers go as numbers,
		// a TIMESTAMP as an instant).
		if c := t.cols[i].cfg; c.From != "" || c.Lookup != nil {
			t.cols[i].srcType = types[i+1].DatabaseTypeName()
		}
	}
	nullable, ok := types[0].Nullable()
	return nullable || !ok, nil
}

// noteReadTypes runs the table's select without reading a row and keeps
// the types it returns as the plan's (readTypes); a planner that changes
// a sourceExpr afterwards calls it again.
func noteReadTypes(ctx context.Context, db *sql.DB, t *table) ([]*sql.ColumnType, error) {
	types, err := selectTypes(ctx, db, "SELECT "+t.sourceKey+", "+t.selectList()+" FROM "+t.source+" LIMIT 0")
	if err != nil {
		return nil, err
	}
	t.readTypes = make([]string, len(types))
	for i, ct := range types {
		t.readTypes[i] = ct.DatabaseTypeName()
	}
	return types, nil
}

// checkKey refuses a source key that keyset pagination cannot page by
// (a FLOAT) or that is not unique (checkUnique).
func checkKey(ctx context.Context, db *sql.DB, t *table) error {
	switch k := t.cfg.Key; t.keyType {
	case "FLOAT":
		// MySQL compares a FLOAT with the text of the last key read as a
		// double, and the float's shortest text (0.1) is a double below
		// the float's own value: the page after 0.1 begins with 0.1.
		return fmt.Errorf("%s is a FLOAT, which keyset pagination cannot page by exactly (a row would be read twice, or forever); "+
			"key on another unique column, or give a query whose key is CAST(%s AS DOUBLE)", k, k)
	case "ENUM", "SET":
		// ORDER BY sorts an ENUM by its place in the list, a SET by its
		// bits, but > compares them with the last key read as text:
		// ('b','a') sorted b first, and the page after b skipped a.
		article := map[string]string{"ENUM": "an", "SET": "a"}[t.keyType]
		return fmt.Errorf("%s is %s %s, which MySQL sorts by its place in the list but compares with text as text: keyset pagination would skip rows; "+
			"give a query whose key is its text, COALESCE(CAST(%s AS CHAR), '')", k, article, t.keyType, k)
	case "BIT":
		// The last key read goes back as bytes, which MySQL compares
		// with a BIT neither as its bytes nor as its number: a page
		// began again at the start, forever.
		return fmt.Errorf("%s is a BIT, which keyset pagination cannot page by (a page would begin again, forever); "+
			"give a query whose key is %s + 0", k, k)
	case "YEAR":
		// ORDER BY sorts MariaDB's YEAR(2) by its year (70, 99, 00, 69),
		// but > compares it with the last key read, the driver's two
		// digits, as those: the page after 99 found nothing, and 2000
		// to 2069 were never read.
		two, err := twoDigitYear(ctx, db, t)
		if err != nil {
			return err
		}
		if two {
			return fmt.Errorf("%s is a YEAR(2), which MariaDB sorts by its year but compares with the last key read as two digits: "+
				"keyset pagination would skip the years after 1999; give a query whose key is %s + 0", k, k)
		}
	}
	return checkUnique(ctx, db, t)
}

// twoDigitYear reports whether t's key is a column of its table declared
// YEAR(2), which the driver names YEAR as it does YEAR(4). A query's key
// is not looked up.
func twoDigitYear(ctx context.Context, db *sql.DB, t *table) (bool, error) {
	if t.cfg.Query != "" {
		return false, nil
	}
	schema, name := splitQualified(t.cfg.From)
	var two bool
	err := db.QueryRowContext(ctx, `SELECT COUNT(*) > 0 FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = COALESCE(NULLIF(?, ''), DATABASE()) AND TABLE_NAME = ? AND COLUMN_NAME = ? AND COLUMN_TYPE = 'year(2)'`,
		schema, name, t.cfg.Key).Scan(&two)
	return two, err
}

// checkFoldedUnique refuses text keys into a uuid key that spell one
// uuid two ways (in another case, with braces, without hyphens): the
// uuid is one, and its text cannot say which key a target row came
// from. A case-insensitive collation does not make the source key
// unique that way: {a0ee…} and a0ee… differ under it too.
func checkFoldedUnique(ctx context.Context, db *sql.DB, t *table) error {
	var dup []byte
	err := db.QueryRowContext(ctx, "SELECT MIN("+t.sourceKey+") FROM "+t.source+" GROUP BY "+uuidSpelling(t.sourceKey)+
		" HAVING COUNT(*) > 1 LIMIT 1").Scan(&dup)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("checking that the key is unique as a uuid: %w", err)
	}
	return fmt.Errorf("%s holds keys that spell one uuid two ways (in another case, with braces or without hyphens; %s is one), "+
		"which are one uuid in the target key: one would overwrite the other; fix the duplicates, then key on the key as it is", t.cfg.Key, showKey(t.key, dup))
}

// checkUnique refuses a source key that is not unique: keyset pagination
// would skip the rows after a duplicate, and the upsert would write one
// target row twice. A table's unique index on the whole key is proof
// enough; otherwise one query looks for a duplicate. Equality is the key
// column's collation, as pagination compares keys.
func checkUnique(ctx context.Context, db *sql.DB, t *table) error {
	if t.cfg.Query == "" {
		schema, name := splitQualified(t.cfg.From)
		var unique bool
		// A prefix index (SUB_PART) proves nothing under a collation whose
		// equality is not character by character: Straße and Strasse
		// differ in their first six characters, which
		// utf8mb4_unicode_ci compares for UNIQUE (Name(6)), and are one
		// key in full, which ORDER BY and > compare, so the page after one
		// skipped the other.
		err := db.QueryRowContext(ctx, `SELECT COUNT(*) > 0 FROM information_schema.STATISTICS s
			WHERE s.TABLE_SCHEMA = COALESCE(NULLIF(?, ''), DATABASE()) AND s.TABLE_NAME = ? AND s.NON_UNIQUE = 0 AND s.COLUMN_NAME = ?
			AND s.SUB_PART IS NULL
			AND NOT EXISTS (SELECT 1 FROM information_schema.STATISTICS o WHERE o.TABLE_SCHEMA = s.TABLE_SCHEMA
				AND o.TABLE_NAME = s.TABLE_NAME AND o.INDEX_NAME = s.INDEX_NAME AND o.COLUMN_NAME <> s.COLUMN_NAME)`,
			schema, name, t.cfg.Key).Scan(&unique)
		if err != nil {
			return fmt.Errorf("checking that the key is unique: %w", err)
		}
		if unique {
			return nil
		}
	}
	var dup []byte
	var spelt bool // the duplicates differ in their bytes (DOUBLE's -0 and 0 too)
	err := db.QueryRowContext(ctx, "SELECT "+t.sourceKey+", COUNT(DISTINCT CAST("+t.sourceKey+" AS BINARY)) > 1 FROM "+t.source+
		" WHERE "+t.sourceKey+" IS NOT NULL GROUP BY "+t.sourceKey+" HAVING COUNT(*) > 1 LIMIT 1").Scan(&dup, &spelt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("checking that the key is unique: %w", err)
	case spelt && isTextType(t.keyType):
		return fmt.Errorf("%s holds keys that differ in their bytes but are one key to its collation, by which MySQL orders and compares "+
			"them (%s is one of them; case, accents, trailing spaces or ß and ss can make them one): the page after one would skip the other; "+
			"make them unique under the collation, or give a query whose key compares their bytes, "+
			"COALESCE(CONVERT(%s USING utf8mb4) COLLATE utf8mb4_nopad_bin, '') (utf8mb4_0900_bin on MySQL 8)", t.cfg.Key, showKey(t.key, dup), t.cfg.Key)
	}
	return fmt.Errorf("%s is not unique in the source (%s appears more than once): rows would be skipped or written twice; "+
		"key on a unique column, or give a query whose key is unique", t.cfg.Key, showKey(t.key, dup))
}

// fixedUTC reports whether zone is UTC all year (UTC, Etc/UTC, GMT…):
// then a time of day with UTC's offset is the zone's.
func fixedUTC(zone *time.Location) bool {
	for _, m := range []time.Month{time.January, time.July} {
		if _, off := time.Date(2024, m, 1, 0, 0, 0, 0, zone).Zone(); off != 0 {
			return false
		}
	}
	return true
}

// zoneKnown checks that the target database, which applies the zone, knows it.
func zoneKnown(ctx context.Context, db *pgxpool.Pool, zone string) error {
	var known bool
	if err := db.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = $1)", zone).Scan(&known); err != nil {
		return err
	}
	if !known {
		return fmt.Errorf("the target database knows no time zone %q", zone)
	}
	return nil
}

// selectList is the source expressions of every column, in order.
func (t *table) selectList() string {
	exprs := make([]string, len(t.cols))
	for i, c := range t.cols {
		exprs[i] = c.sourceExpr
	}
	return strings.Join(exprs, ", ")
}

// myString is a MySQL string literal that needs no escaping, whatever the
// server's sql_mode says about backslashes.
func myString(s string) string {
	if s == "" {
		return "''"
	}
	return "CONVERT(X'" + hex.EncodeToString([]byte(s)) + "' USING utf8mb4)"
}

// myLiteral is a MySQL string literal, needing no escaping either, to
// compare with a column of any type or collation. myString's CONVERT
// holds to its collation as firmly as a column does, so comparing it
// with a utf8mb4_unicode_ci column is an illegal mix of collations; an
// introduced literal takes the column's collation, and a number or date
// column reads it as a number or a date.
func myLiteral(s string) string {
	return "_utf8mb4 X'" + hex.EncodeToString([]byte(s)) + "'"
}

// myIdent quotes a MySQL identifier, schema-qualified or not. The config
// only lets plain identifiers through, so backticks cannot occur.
func myIdent(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		parts[i] = "`" + p + "`"
	}
	return strings.Join(parts, ".")
}

// querySource is a table's query as the source it is read from. The
// newline ends a comment on the query's last line (-- every patient),
// which would otherwise swallow the parenthesis and leave MySQL a syntax
// error near an empty string.
func querySource(query string) string {
	return "(" + strings.TrimRight(strings.TrimSpace(query), ";") + "\n) AS src"
}

// splitQualified splits a table's name, schema-qualified or not, into
// its schema ("" for the connection's database or search path) and its
// name, as the catalogs hold them.
func splitQualified(table string) (schema, name string) {
	if schema, name, ok := strings.Cut(table, "."); ok {
		return schema, name
	}
	return "", table
}

// pgIdent quotes a PostgreSQL identifier, schema-qualified or not.
func pgIdent(name string) string { return pgx.Identifier(strings.Split(name, ".")).Sanitize() }

// otherCase is what an error adds when the target has a table or column
// by the file's name only in another case, found; "" when found is "".
// The file's names are quoted, so Patients is not patients, the name
// PostgreSQL keeps of a table created without quotes as Patients.
func otherCase(found string) string {
	if found == "" {
		return ""
	}
	return fmt.Sprintf("; it has %q: names are matched in their case, and PostgreSQL keeps one created without quotes in lower case", found)
}

// tableInOtherCase is the name (schema-qualified as name is) of a target
// table spelt like name in another case, or "".
func tableInOtherCase(ctx context.Context, db *pgxpool.Pool, name string) string {
	schema, rel := splitQualified(name)
	var found string
	// An error only leaves out the hint: the caller reports the table missing.
	_ = db.QueryRow(ctx, `SELECT coalesce((SELECT CASE WHEN $1 = '' THEN '' ELSE n.nspname || '.' END || c.relname
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE lower(c.relname) = lower($2) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
			AND CASE WHEN $1 = '' THEN pg_table_is_visible(c.oid) ELSE lower(n.nspname) = lower($1) END
		ORDER BY 1 LIMIT 1), '')`, schema, rel).Scan(&found)
	return found
}

// tableInto is the name of the table of cfg copied into the target table
// named table, or "". The target says which names are one table: a
// lookup in public.patients reads what to: patients writes, and waits
// for it; compared as text, it was copied first and found no row.
func tableInto(ctx context.Context, db *pgxpool.Pool, cfg *config.Backfill, table string) (string, error) {
	var tos, names []string
	for _, t := range cfg.Tables {
		if t.To != "" {
			tos, names = append(tos, pgIdent(t.To)), append(names, t.Name)
		}
	}
	var n int
	err := db.QueryRow(ctx, `SELECT coalesce((SELECT u.n FROM unnest($2::text[]) WITH ORDINALITY AS u(name, n)
		WHERE to_regclass(u.name) = to_regclass($1) ORDER BY u.n LIMIT 1), 0)`, pgIdent(table), tos).Scan(&n)
	if err != nil || n == 0 {
		return "", err
	}
	return names[n-1], nil
}

// columnInOtherCase is the name of a column of cols spelt like name in
// another case, or "".
func columnInOtherCase(cols map[string]targetColumn, name string) string {
	for _, n := range slices.Sorted(maps.Keys(cols)) {
		if strings.EqualFold(n, name) {
			return n
		}
	}
	return ""
}

type targetColumn struct {
	// typ is the column's type; under is the type beneath its domains, or
	// typ itself.
	typ, under string
	// nondeterministic is the column's collation, quoted, when it is
	// nondeterministic; "" otherwise.
	nondeterministic               string
	notNull, hasDefault, generated bool
	// identityAlways: an identity column GENERATED ALWAYS.
	identityAlways bool
}

// targetColumns reads a target table's columns from the catalog.
func targetColumns(ctx context.Context, db *pgxpool.Pool, name string) (map[string]targetColumn, error) {
	var exists bool
	if err := db.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", pgIdent(name)).Scan(&exists); err != nil {
		return nil, err
	}
	if !exists {
		return nil, fmt.Errorf("no table %s in the target database%s", name, otherCase(tableInOtherCase(ctx, db, name)))
	}
	rows, err := db.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod),
			(WITH RECURSIVE d(typ, mod, depth) AS (SELECT a.atttypid, a.atttypmod, 0
				UNION ALL SELECT t.typbasetype, t.typtypmod, d.depth + 1 FROM d JOIN pg_type t ON t.oid = d.typ WHERE t.typtype = 'd')
			SELECT format_type(d.typ, d.mod) FROM d ORDER BY d.depth DESC LIMIT 1),
			coalesce((SELECT format('%I.%I', n.nspname, c.collname) FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace
				WHERE c.oid = a.attcollation AND NOT c.collisdeterministic), ''),
			a.attnotnull,
			a.atthasdef OR a.attidentity <> '', a.attgenerated <> '', a.attidentity = 'a'
		FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`, pgIdent(name))
	if err != nil {
		return nil, err
	}
	cols := map[string]targetColumn{}
	for rows.Next() {
		var n string
		var c targetColumn
		if err := rows.Scan(&n, &c.typ, &c.under, &c.nondeterministic, &c.notNull, &c.hasDefault, &c.generated, &c.identityAlways); err != nil {
			return nil, err
		}
		cols[n] = c
	}
	return cols, rows.Err()
}

// uniqueKeyEquality returns the equality operator of a unique index on
// column alone, as ON CONFLICT needs one, schema-qualified; "" when the
// column has no such index. An invalid index (a CREATE UNIQUE INDEX
// CONCURRENTLY that failed, on duplicates) enforces nothing: it is none.
func uniqueKeyEquality(ctx context.Context, db *pgxpool.Pool, table, column string) (string, error) {
	var op string
	err := db.QueryRow(ctx, `SELECT coalesce((SELECT format('OPERATOR(%I.%s)', n.nspname, o.oprname) FROM pg_index i
		JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
		JOIN pg_opclass oc ON oc.oid = i.indclass[0]
		JOIN pg_amop ao ON ao.amopfamily = oc.opcfamily AND ao.amopstrategy = 3
			AND ao.amoplefttype = oc.opcintype AND ao.amoprighttype = oc.opcintype
		JOIN pg_operator o ON o.oid = ao.amopopr
		JOIN pg_namespace n ON n.oid = o.oprnamespace
		WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indisvalid AND i.indnkeyatts = 1
			AND i.indpred IS NULL AND i.indexprs IS NULL AND a.attname = $2 LIMIT 1), '')`, pgIdent(table), column).Scan(&op)
	return op, err
}

// ordered sorts tables so that each comes after the tables its lookups
// read, keeping file order otherwise.
func ordered(tables []*table) ([]*table, error) {
	var out []*table
	placed := map[string]bool{}
	for len(out) < len(tables) {
		progress := false
		for _, t := range tables {
			if placed[t.name] {
				continue
			}
			ready := true
			for _, dep := range t.after {
				ready = ready && placed[dep]
			}
			if ready {
				out, placed[t.name], progress = append(out, t), true, true
			}
		}
		if !progress {
			return nil, errors.New("the tables' lookups form a cycle; no table can be copied first")
		}
	}
	return out, nil
}

// waves groups ordered tables into sets that can be copied at the same
// time: each wave only looks up tables of earlier waves.
func waves(tables []*table) [][]*table {
	wave := map[string]int{}
	var out [][]*table
	for _, t := range tables {
		w := 0
		for _, dep := range t.after {
			if d, ok := wave[dep]; ok {
				w = max(w, d+1)
			}
		}
		wave[t.name] = w
		for len(out) <= w {
			out = append(out, nil)
		}
		out[w] = append(out[w], t)
	}
	return out
}
