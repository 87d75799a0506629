package config

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"strangler/internal/dsn"
)

// Backfill configures `strangler backfill` and `strangler verify`: which
// legacy rows are copied to which modern tables, and how their columns map.
type Backfill struct {
	// Source is the legacy database: mysql://user:pass@host:3306/db.
	Source DatabaseURL `yaml:"source,omitempty"`
	// Sources, instead of Source, are several legacy databases the same
	// plan runs against one after another; SourcesQuery finds them in a
	// catalogue database instead. Both are for tables sent to the API.
	Sources      []NamedSource `yaml:"sources,omitempty"`
	SourcesQuery *SourcesQuery `yaml:"sources_query,omitempty"`
	// Target is the modern database: postgres://user:pass@host:5432/db.
	// The ledger of runs, checkpoints and failed rows lives there too.
	// Only tables copied into a database need it.
	Target DatabaseURL `yaml:"target,omitempty"`
	// API is the modern service that tables with target_api are sent to;
	// their ledger is in the facade's state store.
	API *BackfillAPI `yaml:"api,omitempty"`
	// Before and After are requests to the modern service before the first
	// row is sent and after the last (and after WaitUntil).
	Before []APIStep `yaml:"before,omitempty"`
	After  []APIStep `yaml:"after,omitempty"`
	// WaitUntil, if set, waits for the modern service's asynchronous work
	// once the rows are sent.
	WaitUntil *WaitUntil `yaml:"wait_until,omitempty"`
	// Batch is how many rows are read, written and checkpointed together.
	Batch int `yaml:"batch"`
	// Rate caps rows per second across all tables; 0 means no cap.
	Rate int `yaml:"rate"`
	// Concurrency is how many tables or key ranges are copied at once.
	Concurrency int `yaml:"concurrency"`
	// SourceTimeZone is the time zone whose wall time the source's DATETIME
	// values hold (an IANA name such as Asia/Kolkata); empty means UTC. It
	// decides the instant a DATETIME becomes in a timestamptz column.
	// TIMESTAMP values carry their instant and need none.
	SourceTimeZone string `yaml:"source_time_zone,omitempty"`
	// BatchTimeout bounds each batch's work in the target (its
	// transaction), every other read and write to the target and the
	// sources, and, for tables sent through the API, each call to the
	// state store: a database that goes silent, its packets dropped, is
	// taken as a lost connection rather than waited on until TCP gives
	// up. 0 means DefaultBatchTimeout.
	BatchTimeout Duration `yaml:"batch_timeout,omitempty"`
	// Sequences says what becomes of the target's sequences owned by the
	// columns copied (serial, identity BY DEFAULT) once a table is
	// copied: "reset" (the default) moves each forward to the largest
	// value copied, never back; "leave" leaves them.
	Sequences string `yaml:"sequences,omitempty"`
	// Tables are copied in dependency order: a table whose lookup reads
	// another table of the list waits for it.
	Tables []BackfillTable `yaml:"tables"`

	// file and pos place the section's fields, for errors found later
	// against the databases.
	file string
	pos  map[string]Position
}

// Locate names a field of the section the way configuration errors do,
// "file:line:column: backfill.tables[0].columns.email", for problems found
// only against the databases; without a known position it is the field
// alone.
func (b *Backfill) Locate(field string) string {
	p, ok := b.pos[field]
	for parent := field; !ok && parent != ""; {
		parent = parentPath(parent)
		p, ok = b.pos[parent]
	}
	if !ok {
		return field
	}
	return fmt.Sprintf("%s:%d:%d: %s", b.file, p.Line, p.Column, field)
}

// BackfillTable maps one legacy table or query to one modern table.
type BackfillTable struct {
	// Name identifies the table in reports, metrics, the ledger and --keys.
	Name string `yaml:"name"`
	// From is the source table; Query a SELECT to read instead.
	From  string `yaml:"from,omitempty"`
	Query string `yaml:"query,omitempty"`
	// Key is the source column that identifies a row: unique and orderable,
	// so it drives keyset pagination and checkpoints.
	Key string `yaml:"key"`
	// To is the target table.
	To string `yaml:"to,omitempty"`
	// TargetKey is the target column holding Key, unique in the target: rows
	// are upserted on it.
	TargetKey string `yaml:"target_key,omitempty"`
	// Columns maps each target column to where its value comes from.
	Columns map[string]Column `yaml:"columns,omitempty"`
	// TargetAPI, instead of To, TargetKey and Columns, sends each row to
	// the modern service's API.
	TargetAPI *TargetAPI `yaml:"target_api,omitempty"`
	// Redact names target columns (or, with target_api, body fields) whose
	// values never appear in the ledger, reports or logs; the API ledger
	// keeps their keyed hash.
	Redact []string `yaml:"redact,omitempty"`
	// NullKeys says what a key that can be NULL in the source means: refused
	// before copying (the default), or skip: rows with a NULL key are
	// counted as failed and the others copied.
	NullKeys NullKeys `yaml:"null_keys,omitempty"`
}

// NullKeys is what a backfill does with a source key that can be NULL. It
// is a closed set.
type NullKeys string

// The null_keys settings; the empty value means NullKeysRefuse.
const (
	NullKeysRefuse NullKeys = "refuse"
	NullKeysSkip   NullKeys = "skip"
)

// UnmarshalText parses a null_keys setting.
func (n *NullKeys) UnmarshalText(b []byte) error {
	switch v := NullKeys(b); v {
	case NullKeysRefuse, NullKeysSkip:
		*n = v
		return nil
	}
	return fmt.Errorf("unknown null_keys %q; want refuse or skip", b)
}

// Column says where one target column's value comes from. Written as a
// plain string it is just the source column.
type Column struct {
	// From is the source column; empty when the value is Default alone.
	From string `yaml:"from,omitempty"`
	// Transform is applied to the source value, in order.
	Transform []Transform `yaml:"transform,omitempty"`
	// Default replaces a NULL (after the transforms).
	Default *string `yaml:"default,omitempty"`
	// Lookup translates the source value, a foreign key, through another
	// target table: the value stored is Lookup.Column of the row whose
	// Lookup.Key equals it.
	Lookup *Lookup `yaml:"lookup,omitempty"`
	// Lossy lets the target type change a value (drop a DATETIME's time of
	// day into a date, round into a narrower numeric or timestamp, cut a
	// string to a varchar's length, keep only the last of a JSON object's
	// duplicate keys); without it such a row goes to the ledger.
	Lossy bool `yaml:"lossy,omitempty"`
}

// ShortField is the field that a column written as a single name fills:
// `first_name: FirstName` stands for `first_name: {from: FirstName}`.
func (Column) ShortField() string { return "from" }

// MarshalYAML writes a column that only names its source in the short form.
func (c Column) MarshalYAML() (any, error) {
	if len(c.Transform) == 0 && c.Default == nil && c.Lookup == nil && !c.Lossy {
		return c.From, nil
	}
	type long Column // without the method, so the struct is written as is
	return long(c), nil
}

// Lookup translates a foreign key through another target table, typically
// through its legacy_id: {table: patients, key: legacy_id, column: id}.
// In a target_api body it reads another source table instead.
type Lookup struct {
	Table  string `yaml:"table"`
	Key    string `yaml:"key"`
	Column string `yaml:"column"`
	// Where narrows a body lookup to the rows whose columns equal these
	// values ({Hospital_Identifier_Type_Code: RVH}): a row whose lookup
	// still finds several values is not sent. A database lookup's key is
	// unique (a unique index on it alone), so it takes none.
	Where map[string]string `yaml:"where,omitempty"`
}

// Transform is one step applied to a source value. It is a closed set.
type Transform string

// The transforms.
const (
	TransformTrim        Transform = "trim"
	TransformLower       Transform = "lower"
	TransformUpper       Transform = "upper"
	TransformNullIfEmpty Transform = "null_if_empty"
)

// UnmarshalText parses a transform name.
func (t *Transform) UnmarshalText(b []byte) error {
	switch v := Transform(b); v {
	case TransformTrim, TransformLower, TransformUpper, TransformNullIfEmpty:
		*t = v
		return nil
	}
	return fmt.Errorf("unknown transform %q; want trim, lower, upper or null_if_empty", b)
}

// DatabaseURL is a database URL: mysql://… or postgres://…. Printing it
// hides the password.
type DatabaseURL struct{ *url.URL }

// UnmarshalText parses a database URL.
func (d *DatabaseURL) UnmarshalText(b []byte) error {
	u, err := url.Parse(string(b))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("invalid database URL; write it like mysql://user:pass@host:3306/db or postgres://user:pass@host:5432/db")
	}
	d.URL = u
	return nil
}

// MarshalText writes the URL with its passwords redacted.
func (d DatabaseURL) MarshalText() ([]byte, error) {
	if d.URL == nil {
		return nil, nil
	}
	return []byte(d.Redacted()), nil
}

// Redacted is the URL with every password hidden: the userinfo's, and a
// password or sslpassword in the query, which url.URL's Redacted shows.
func (d DatabaseURL) Redacted() string { return dsn.Redact(d.String()) }

// IsMySQL reports whether the URL names a MySQL or MariaDB server.
func (d DatabaseURL) IsMySQL() bool {
	return d.URL != nil && (d.Scheme == "mysql" || d.Scheme == "mariadb")
}

// IsPostgres reports whether the URL names a PostgreSQL server.
func (d DatabaseURL) IsPostgres() bool {
	return d.URL != nil && (d.Scheme == "postgres" || d.Scheme == "postgresql")
}

// Defaults of the backfill section.
const (
	DefaultBackfillBatch       = 5000
	DefaultBackfillConcurrency = 2
	// DefaultBatchTimeout is generous: a batch of 5000 rows takes well
	// under a second on a healthy target, and one waiting minutes for a
	// lock still finishes.
	DefaultBatchTimeout = 5 * time.Minute
)

// paceProblem is what is wrong with one of batch, rate and concurrency.
type paceProblem struct{ field, msg string }

// paceProblems are what is wrong with the batch, rate and concurrency:
// the file's validation and CheckPace share the bounds.
func (b *Backfill) paceProblems() []paceProblem {
	var ps []paceProblem
	if b.Batch < 1 || b.Batch > 1_000_000 {
		ps = append(ps, paceProblem{"batch", fmt.Sprintf("want a number of rows from 1 to 1000000, got %d", b.Batch)})
	}
	if b.Rate < 0 {
		ps = append(ps, paceProblem{"rate", fmt.Sprintf("want rows per second, 0 for no limit; got %d", b.Rate)})
	}
	if b.Concurrency < 1 || b.Concurrency > 64 {
		ps = append(ps, paceProblem{"concurrency", fmt.Sprintf("want a number from 1 to 64, got %d", b.Concurrency)})
	}
	return ps
}

// CheckPace checks the batch, rate and concurrency as the file's are
// checked, for when the command line has changed them (--batch, --rate,
// --concurrency); the error starts with the field of the first one out
// of bounds.
func (b *Backfill) CheckPace() error {
	if ps := b.paceProblems(); len(ps) > 0 {
		return fmt.Errorf("%s: %s", ps[0].field, ps[0].msg)
	}
	return nil
}

func (b *Backfill) applyDefaults() {
	if b.Batch == 0 {
		b.Batch = DefaultBackfillBatch
	}
	if b.Concurrency == 0 {
		b.Concurrency = DefaultBackfillConcurrency
	}
	// Only tables copied into the target database have a batch in it, or
	// its sequences.
	if _, db := b.APITables(); db && b.BatchTimeout == 0 {
		b.BatchTimeout = Duration(DefaultBatchTimeout)
	}
	if _, db := b.APITables(); db && b.Sequences == "" {
		b.Sequences = "reset"
	}
	b.applyAPIDefaults()
}

// Table returns the table named name, or nil.
func (b *Backfill) Table(name string) *BackfillTable {
	for i := range b.Tables {
		if b.Tables[i].Name == name {
			return &b.Tables[i]
		}
	}
	return nil
}

// TableNames are the tables' names in file order.
func (b *Backfill) TableNames() []string {
	names := make([]string, len(b.Tables))
	for i, t := range b.Tables {
		names[i] = t.Name
	}
	return names
}

// ColumnNames are the target columns in a stable order: the target key
// first, then by name.
func (t *BackfillTable) ColumnNames() []string {
	names := make([]string, 0, len(t.Columns))
	for name := range t.Columns {
		if name != t.TargetKey {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	if _, ok := t.Columns[t.TargetKey]; ok {
		names = append([]string{t.TargetKey}, names...)
	}
	return names
}

// Redacted reports whether the target column's values must be hidden.
func (t *BackfillTable) Redacted(column string) bool { return slices.Contains(t.Redact, column) }

func (d *checker) validateBackfill(b *Backfill) {
	if b == nil {
		return
	}
	b.file, b.pos = d.File, d.Pos
	d.validateSources(b)
	_, usesDB := b.APITables()
	switch {
	case b.Target.URL == nil && !usesDB:
	case b.Target.URL == nil:
		d.errorAt("backfill.target", "is required: the modern database, like postgres://user:pass@host:5432/db")
	case !b.Target.IsPostgres():
		d.errorAt("backfill.target", "want a postgres:// URL, got %s://", b.Target.Scheme)
	default:
		if err := d.CheckPostgres(b.Target.String()); err != nil {
			d.errorAt("backfill.target", "invalid PostgreSQL URL: %v", err)
		}
	}
	for _, p := range b.paceProblems() {
		d.errorAt("backfill."+p.field, "%s", p.msg)
	}
	if z := b.SourceTimeZone; z != "" && !isZoneName(z) {
		d.errorAt("backfill.source_time_zone", "invalid time zone %q; want an IANA name like UTC, Europe/Paris or Asia/Kolkata", z)
	}
	if b.Sequences != "" && b.Sequences != "reset" && b.Sequences != "leave" {
		d.errorAt("backfill.sequences", "want reset or leave, got %q", b.Sequences)
	}
	if len(b.Tables) == 0 {
		d.errorAt("backfill.tables", "lists no table")
	}
	d.validateAPI(b)
	names := map[string]int{}
	for i := range b.Tables {
		at := func(field string) string { return fmt.Sprintf("backfill.tables[%d].%s", i, field) }
		t := &b.Tables[i]
		switch {
		case t.Name == "":
			d.errorAt(at("name"), "is required")
		case !isRouteName(t.Name):
			d.errorAt(at("name"), "%s", nameRefusal(t.Name))
		default:
			if first, dup := names[t.Name]; dup {
				d.errorAt(at("name"), "duplicate table name %q (also backfill.tables[%d])", t.Name, first)
			}
			names[t.Name] = i
		}
		switch {
		case t.From == "" && t.Query == "":
			d.errorAt(at("from"), "is required: name the source table, or give a query")
		case t.From != "" && t.Query != "":
			d.errorAt(at("query"), "give from or query, not both")
		case t.From != "":
			d.checkIdent(at("from"), t.From, true)
		}
		if t.TargetAPI != nil {
			d.validateTargetAPI(t, at)
			continue
		}
		d.checkIdent(at("key"), t.Key, false)
		d.checkIdent(at("to"), t.To, true)
		d.checkIdent(at("target_key"), t.TargetKey, false)
		if len(t.Columns) == 0 {
			d.errorAt(at("columns"), "maps no column")
		}
		for _, name := range t.ColumnNames() {
			d.validateColumn(fmt.Sprintf("backfill.tables[%d].columns.%s", i, name), name, t.Columns[name])
		}
		if t.TargetKey != "" && len(t.Columns) > 0 {
			c, ok := t.Columns[t.TargetKey]
			switch {
			case !ok:
				d.errorAt(at("target_key"), "%q is not among the columns; map it from the source key (%s: %s)", t.TargetKey, t.TargetKey, t.Key)
			case c.From != t.Key || len(c.Transform) > 0 || c.Default != nil || c.Lookup != nil || c.Lossy:
				d.errorAt(at("columns."+t.TargetKey), "the target key must be the source key as it is (%s: %s): rows are matched by it", t.TargetKey, t.Key)
			}
		}
		for j, r := range t.Redact {
			switch _, ok := t.Columns[r]; {
			case !ok:
				d.errorAt(fmt.Sprintf("backfill.tables[%d].redact[%d]", i, j), "%q is not a mapped column", r)
			case r == t.TargetKey:
				// Rows are named by their key wherever one is named: the
				// ledger, the reports, verify, --keys. Hiding it there would
				// leave a failed row nobody can find.
				d.warnAt(fmt.Sprintf("backfill.tables[%d].redact[%d]", i, j),
					"%q is the target key: its values are hidden from the rows' other columns, but the ledger, reports, logs and verify name rows by it in clear; key the table on a column that is not patient data", r)
			}
		}
	}
}

func (d *checker) validateColumn(path, name string, c Column) {
	if !isIdent(name) {
		d.errorAt(path, "invalid column name %q; "+identRule, name)
	}
	switch {
	case c.From == "" && c.Default == nil:
		d.errorAt(path, "give a source column (from) or a default")
	case c.From != "":
		d.checkIdent(path+".from", c.From, false)
	}
	if c.Lookup != nil {
		if c.From == "" {
			d.errorAt(path+".lookup", "needs from: the source column holding the foreign key")
		}
		d.checkIdent(path+".lookup.table", c.Lookup.Table, true)
		d.checkIdent(path+".lookup.key", c.Lookup.Key, false)
		d.checkIdent(path+".lookup.column", c.Lookup.Column, false)
		if len(c.Lookup.Where) > 0 {
			d.errorAt(path+".lookup.where", "applies to target_api body lookups only; a database lookup's key is unique, so it finds one row")
		}
	}
}

// checkIdent insists on plain SQL identifiers (optionally schema-qualified),
// since they are quoted into statements on both databases.
func (d *checker) checkIdent(path, s string, qualified bool) {
	if s == "" {
		d.errorAt(path, "is required")
		return
	}
	parts := []string{s}
	if qualified {
		parts = strings.Split(s, ".")
	}
	for _, p := range parts {
		if len(parts) > 2 || !isIdent(p) {
			d.errorAt(path, "invalid name %q; "+identRule, s)
			return
		}
	}
}

// isZoneName accepts the shape of an IANA time zone name (Asia/Kolkata,
// America/Argentina/Buenos_Aires, Etc/GMT+5, UTC); the target database,
// which applies the zone, says whether it knows it.
func isZoneName(s string) bool {
	for _, part := range strings.Split(s, "/") {
		if part == "" || !strings.ContainsAny(part[:1], "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
			return false
		}
		for _, c := range part {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("_-+", c)) {
				return false
			}
		}
	}
	return len(s) <= 64
}

// identRule is what isIdent accepts, as errors tell it. 63 bytes is
// PostgreSQL's longest name (MySQL's is 64): a longer name was refused
// as if one of its characters were wrong.
const identRule = "use up to 63 of: letters, digits and _"

func isIdent(s string) bool {
	for i, c := range s {
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && (c >= '0' && c <= '9' || c == '$') {
			continue
		}
		return false
	}
	return s != "" && len(s) <= 63
}
