package backfill

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/go-sql-driver/mysql"

	"strangler/config"
	"strangler/internal/dsn"
	"strangler/internal/human"
	"strangler/internal/mysqldsn"
)

// SourceReport is what a run over several sources did to one of them, or
// (as the report's Total) to all.
type SourceReport struct {
	Source  string  `json:"source"`
	RunID   int64   `json:"run_id,omitempty"`
	Read    int64   `json:"read"`
	Written int64   `json:"written"`
	Failed  int64   `json:"failed"`
	Seconds float64 `json:"duration_seconds"`
	// Error is why this source's run stopped, or never started.
	Error string `json:"error,omitempty"`
}

// runSources is Run for a plan over several sources (cfg.Sources or
// cfg.SourcesQuery): it runs the plan once per source, one after another,
// each with its own run in the ledger, and returns one report: every
// source's tables (TableReport.Source names it), a line per source and
// the total. A source that fails does not stop the others; the error
// joins theirs.
func runSources(ctx context.Context, cfg *config.Backfill, opts Options) (*Report, error) {
	if opts.Worker {
		return nil, errors.New("workers share runs of tables copied into the database; a run over several sources sends to the API in one process")
	}
	started := time.Now()
	sources, err := listSources(ctx, cfg, opts)
	if err != nil {
		return nil, err
	}
	all := &Report{Mode: opts.mode(), DryRun: opts.DryRun, Started: started, Total: &SourceReport{Source: "total"}}
	var errs []error
	for _, s := range sources {
		one := *cfg
		one.Source, one.Sources, one.SourcesQuery = s.DSN, nil, nil
		o := opts
		o.Source, o.Log = s.Name, opts.Log.With("source", s.Name)
		rep, err := Run(ctx, &one, o)
		sr := SourceReport{Source: s.Name}
		if rep != nil {
			sr.RunID = rep.RunID
			sr.Seconds = rep.Finished.Sub(rep.Started).Seconds()
			for _, t := range rep.Tables {
				t.Source = s.Name
				all.Tables = append(all.Tables, t)
				sr.Read, sr.Written, sr.Failed = sr.Read+t.Read, sr.Written+t.Written(), sr.Failed+t.Failed
			}
		}
		if err != nil {
			sr.Error = err.Error()
			errs = append(errs, fmt.Errorf("source %s: %w", s.Name, err))
		}
		all.Sources = append(all.Sources, sr)
		all.Total.Read += sr.Read
		all.Total.Written += sr.Written
		all.Total.Failed += sr.Failed
		if ctx.Err() != nil {
			break
		}
	}
	all.Finished = time.Now()
	all.Total.Seconds = all.Finished.Sub(started).Seconds()
	err = errors.Join(errs...)
	if err != nil {
		all.Error = err.Error()
	}
	return all, err
}

// listSources returns the file's sources, or those its sources_query
// finds in the catalogue, checked as the file's are. A connection to the
// catalogue lost meanwhile reads it again on the run's resumption
// policy, and one still lost after the last try, the catalogue
// answering no ping, stops the run saying so.
func listSources(ctx context.Context, cfg *config.Backfill, opts Options) (out []config.NamedSource, err error) {
	q := cfg.SourcesQuery
	if q == nil {
		return cfg.Sources, nil
	}
	db, err := openMySQL(q.DSN, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Locate("backfill.sources_query.dsn"), err)
	}
	defer db.Close()
	gone := func(ctx context.Context, waited string) *databaseGone {
		ctx, cancel := context.WithTimeout(ctx, pingTimeout)
		defer cancel()
		if err := db.PingContext(ctx); err != nil {
			return &databaseGone{side: "sources_query catalogue", waited: waited}
		}
		return nil
	}
	err = opts.policy().resumingGone(ctx, opts.Log, "the reading of its sources", []any{"step", "sources_query"}, gone,
		func() (err error) {
			out, err = readSources(ctx, cfg, db)
			return err
		})
	return out, err
}

// readSources reads the sources a sources_query finds in the catalogue
// db.
func readSources(ctx context.Context, cfg *config.Backfill, db *sql.DB) ([]config.NamedSource, error) {
	q := cfg.SourcesQuery
	rows, err := db.QueryContext(ctx, q.Query)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Locate("backfill.sources_query.query"), dsn.RedactError(catalogueLost(cfg, err), q.DSN.String()))
	}
	defer rows.Close()
	var out []config.NamedSource
	seen := map[string]bool{}
	for rows.Next() {
		var name, raw string
		if err := rows.Scan(&name, &raw); err != nil {
			return nil, fmt.Errorf("%s: want rows of (name, dsn): %w", cfg.Locate("backfill.sources_query.query"), err)
		}
		// The DSN came from a table: its password must not reach an error.
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%s: source %q (dsn %s): %s", cfg.Locate("backfill.sources_query.query"), name, dsn.Redact(raw), fmt.Sprintf(format, args...))
		}
		if err := config.CheckSourceName(name); err != nil {
			return nil, bad("name %v", err)
		}
		if seen[name] {
			return nil, bad("duplicate source name")
		}
		seen[name] = true
		var u config.DatabaseURL
		if err := u.UnmarshalText([]byte(raw)); err != nil {
			return nil, bad("%v", err)
		}
		if !u.IsMySQL() {
			return nil, bad("want a mysql:// URL, got %s://", u.Scheme)
		}
		if _, err := mysqldsn.DriverDSN(raw); err != nil {
			return nil, bad("%v", dsn.RedactError(err, raw))
		}
		out = append(out, config.NamedSource{Name: name, DSN: u})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Locate("backfill.sources_query.query"), dsn.RedactError(catalogueLost(cfg, err), q.DSN.String()))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: found no source", cfg.Locate("backfill.sources_query.query"))
	}
	return out, nil
}

// catalogueLost is mysqlLost of a sources_query's catalogue.
func catalogueLost(cfg *config.Backfill, err error) error {
	return mysqlLost(cfg, "sources_query catalogue", err)
}

// openMySQL opens a MySQL database named by a mysql:// URL, its reads
// and writes bounded by cfg's batch_timeout.
func openMySQL(u config.DatabaseURL, cfg *config.Backfill) (*sql.DB, error) {
	driverDSN, err := mysqldsn.DriverDSN(u.String())
	if err != nil {
		return nil, err
	}
	mcfg, err := mysql.ParseDSN(driverDSN)
	if err != nil {
		return nil, dsn.RedactError(err, driverDSN)
	}
	boundMySQL(mcfg, cfg)
	db, err := sql.Open("mysql", mcfg.FormatDSN())
	if err != nil {
		return nil, dsn.RedactError(err, driverDSN)
	}
	return db, nil
}

// writeSources writes the line per source and the total.
func (r *Report) writeSources(w io.Writer) {
	if r.Total == nil {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "source\trun\tread\twritten\tfailed\tduration\t")
	for _, s := range append(r.Sources, *r.Total) {
		run := ""
		if s.RunID != 0 {
			run = fmt.Sprintf("#%d", s.RunID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Source, run, human.Count(s.Read), human.Count(s.Written), human.Count(s.Failed),
			time.Duration(s.Seconds*float64(time.Second)).Round(time.Millisecond))
	}
	tw.Flush()
}
