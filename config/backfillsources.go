package config

import "fmt"

// NamedSource is one of several legacy databases the same backfill plan
// runs against, one after another: one customer's, one clinic's.
type NamedSource struct {
	// Name identifies the source in reports, metrics and the ledger: the
	// API ledger keeps its rows under "<name>:<table>", and the requests'
	// Idempotency-Keys are "<name>:<table>:<key>".
	Name string `yaml:"name"`
	// DSN is the source database, like Backfill.Source.
	DSN DatabaseURL `yaml:"dsn"`
}

// SourcesQuery finds the source databases in a catalogue database: each
// row of Query is a source, its first column the name, its second the DSN.
type SourcesQuery struct {
	// DSN is the catalogue database, a mysql:// URL.
	DSN DatabaseURL `yaml:"dsn"`
	// Query returns (name, dsn) rows, like SELECT name, dsn FROM tenants.
	Query string `yaml:"query"`
}

// validateSources checks that the section names its legacy database one
// way (source, sources or sources_query) and, with several, that they can
// share a plan: named distinctly, sent to the API only.
func (d *checker) validateSources(b *Backfill) {
	given := 0
	for _, set := range []bool{b.Source.URL != nil, b.Sources != nil, b.SourcesQuery != nil} {
		if set {
			given++
		}
	}
	switch {
	case given == 0:
		d.errorAt("backfill.source", "is required: the legacy database, like mysql://user:pass@host:3306/db (or sources: a list of them, or sources_query)")
		return
	case given > 1:
		field := "backfill.sources"
		if b.Sources == nil {
			field = "backfill.sources_query"
		}
		d.errorAt(field, "give one of source, sources and sources_query")
	case b.Source.URL != nil:
		d.checkSourceURL("backfill.source", b.Source)
		return
	}
	if _, db := b.APITables(); db {
		// Two sources' rows with the same key would upsert the same target
		// row, and the database ledger keys checkpoints by table alone.
		field := "backfill.sources"
		if b.SourcesQuery != nil {
			field = "backfill.sources_query"
		}
		d.errorAt(field, "several sources are for tables sent to the API (target_api); copy each source into a database with its own configuration")
	}
	if q := b.SourcesQuery; q != nil {
		d.checkSourceURL("backfill.sources_query.dsn", q.DSN)
		if q.Query == "" {
			d.errorAt("backfill.sources_query.query", "is required: a SELECT returning each source's name and DSN, like SELECT name, dsn FROM tenants")
		}
		return
	}
	if len(b.Sources) == 0 {
		d.errorAt("backfill.sources", "lists no source")
	}
	names := map[string]int{}
	for i, s := range b.Sources {
		at := fmt.Sprintf("backfill.sources[%d]", i)
		if err := CheckSourceName(s.Name); err != nil {
			d.errorAt(at+".name", "%v", err)
		} else if first, dup := names[s.Name]; dup {
			d.errorAt(at+".name", "duplicate source name %q (also backfill.sources[%d])", s.Name, first)
		} else {
			names[s.Name] = i
		}
		d.checkSourceURL(at+".dsn", s.DSN)
	}
}

// CheckSourceName checks a source's name, from the file or from a
// sources_query: it becomes part of ledger names and Idempotency-Keys.
func CheckSourceName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("is required")
	case !isRouteName(name) || len(name) > 63:
		return fmt.Errorf("invalid source name %q; use up to 63 of: lower-case letters, digits, \"-\", \"_\" and \".\"", name)
	}
	return nil
}

func (d *checker) checkSourceURL(field string, u DatabaseURL) {
	switch {
	case u.URL == nil:
		d.errorAt(field, "is required: a database, like mysql://user:pass@host:3306/db")
	case !u.IsMySQL():
		d.errorAt(field, "want a mysql:// URL, got %s://", u.Scheme)
	default:
		if _, err := d.MySQLDriverDSN(u.String()); err != nil {
			d.errorAt(field, "%v", err)
		}
	}
}
