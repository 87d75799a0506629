package backfill

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"strangler/config"
	"strangler/internal/dberr"
	"strangler/internal/human"
)

// VerifyOptions tune a verify; the zero value compares every table.
type VerifyOptions struct {
	// Tables limits the comparison to these tables; empty means all.
	Tables []string
	// Samples is how many keys of each kind of deviation a table's report
	// names; 0 means 10.
	Samples int
	// Chunk is how many rows are compared at a time; 0 means 10,000.
	Chunk int
	// ShowValues puts the legacy and modern values of the changed rows'
	// differing columns in the report; redacted columns stay hidden. Off,
	// the report names keys and columns, never values.
	ShowValues bool
	// Metrics, if set, gets the deviations per table and kind.
	Metrics *Metrics
	// Log receives a line per table; nil discards them.
	Log *slog.Logger

	// resumePause is Options.resumePause for verify.
	resumePause time.Duration
}

// VerifyReport is what a verify found.
type VerifyReport struct {
	Started  time.Time   `json:"started"`
	Finished time.Time   `json:"finished"`
	Tables   []TableDiff `json:"tables"`
	// NotCompared names the tables sent to the modern service's API
	// (target_api), which verify does not compare: their rows are in no
	// target table.
	NotCompared []string `json:"not_compared"`
}

// TableDiff is how one table differs between legacy and modern.
type TableDiff struct {
	Table      string `json:"table"`
	LegacyRows int64  `json:"legacy_rows"`
	ModernRows int64  `json:"modern_rows"`
	// Missing counts rows in legacy that modern lacks; MissingFailed how
	// many of them the ledger records as failed to copy.
	Missing       int64 `json:"missing"`
	MissingFailed int64 `json:"missing_failed"`
	// Extra counts rows in modern (with a legacy key) that legacy lacks.
	Extra int64 `json:"extra"`
	// Changed counts rows on both sides whose mapped columns differ: a
	// backfill would write them, or refuse them (MissingFailed does not
	// count those).
	Changed int64 `json:"changed"`
	// NullKeys counts legacy rows with a NULL key (null_keys: skip), which
	// no backfill copies; they count among the deviations.
	NullKeys    int64        `json:"null_keys"`
	MissingKeys []string     `json:"missing_keys"`
	ExtraKeys   []string     `json:"extra_keys"`
	ChangedRows []ChangedRow `json:"changed_rows"`
	// Queries is how many queries the comparison took on both sides.
	Queries int64   `json:"queries"`
	Seconds float64 `json:"duration_seconds"`
}

// ChangedRow names a row that differs and its differing columns.
type ChangedRow struct {
	Key     string       `json:"key"`
	Columns []ColumnDiff `json:"columns"`
}

// ColumnDiff is one differing column; the values are there only when
// asked for, and never for redacted columns. Binary values are shown by
// their MD5.
type ColumnDiff struct {
	Column   string  `json:"column"`
	Redacted bool    `json:"redacted,omitempty"`
	Legacy   *string `json:"legacy,omitempty"`
	Modern   *string `json:"modern,omitempty"`
}

// Deviations counts the rows that differ, in every table.
func (r *VerifyReport) Deviations() int64 {
	var n int64
	for _, t := range r.Tables {
		n += t.Missing + t.Extra + t.Changed + t.NullKeys
	}
	return n
}

// WriteText writes the report as a table for a terminal.
func (r *VerifyReport) WriteText(w io.Writer) {
	// Keys and, with --show-values, values come from the data: nothing
	// in them may act on the terminal, and each stays on its finding's
	// line (human.Printable without lines).
	p := human.NewPrintableWriter(w)
	defer p.Close()
	w = p
	notCompared := ""
	if n := len(r.NotCompared); n > 0 {
		notCompared = fmt.Sprintf(" (%d more not compared)", n)
	}
	fmt.Fprintf(w, "verify: %s deviations in %d tables%s, %s\n", human.Count(r.Deviations()), len(r.Tables), notCompared, r.Finished.Sub(r.Started).Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\tlegacy rows\tmodern rows\tmissing\textra\tchanged\tqueries\tduration\t")
	for _, t := range r.Tables {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t\n", t.Table, human.Count(t.LegacyRows), human.Count(t.ModernRows),
			human.Count(t.Missing), human.Count(t.Extra), human.Count(t.Changed), t.Queries,
			time.Duration(t.Seconds*float64(time.Second)).Round(time.Millisecond))
	}
	tw.Flush()
	for _, name := range r.NotCompared {
		fmt.Fprintf(w, "%s: not compared: its rows are sent to the API (target_api), and verify compares tables copied into the target database\n", name)
	}
	for _, t := range r.Tables {
		if t.Missing > 0 {
			note := ""
			if t.MissingFailed > 0 {
				note = fmt.Sprintf(" (%s of them failed to copy: see the ledger)", human.Count(t.MissingFailed))
			}
			fmt.Fprintf(w, "%s: missing in modern%s: %s\n", t.Table, note, moreKeys(t.MissingKeys, t.Missing))
		}
		if t.NullKeys > 0 {
			fmt.Fprintf(w, "%s: %s rows in legacy have a NULL key, which no backfill copies\n", t.Table, human.Count(t.NullKeys))
		}
		if t.Extra > 0 {
			fmt.Fprintf(w, "%s: extra in modern: %s\n", t.Table, moreKeys(t.ExtraKeys, t.Extra))
		}
		for _, c := range t.ChangedRows {
			var cols []string
			for _, d := range c.Columns {
				switch {
				case d.Redacted:
					cols = append(cols, human.Printable(d.Column, false)+" (redacted)")
				case d.Legacy != nil || d.Modern != nil:
					cols = append(cols, fmt.Sprintf("%s (%s in legacy, %s in modern)", human.Printable(d.Column, false), quoteOrNull(d.Legacy), quoteOrNull(d.Modern)))
				default:
					cols = append(cols, human.Printable(d.Column, false))
				}
			}
			fmt.Fprintf(w, "%s: changed %s: %s\n", t.Table, human.Printable(c.Key, false), strings.Join(cols, ", "))
		}
		if extra := t.Changed - int64(len(t.ChangedRows)); extra > 0 {
			fmt.Fprintf(w, "%s: and %s more changed rows\n", t.Table, human.Count(extra))
		}
	}
}

func moreKeys(keys []string, n int64) string {
	shown := make([]string, len(keys))
	for i, k := range keys {
		shown[i] = human.Printable(k, false)
	}
	s := strings.Join(shown, ", ")
	if extra := n - int64(len(keys)); extra > 0 {
		s += fmt.Sprintf(" and %s more", human.Count(extra))
	}
	return s
}

func quoteOrNull(s *string) string {
	if s == nil {
		return "NULL"
	}
	return strconv.Quote(*s)
}

// Verify compares the legacy and the modern database per cfg's tables.
// Its error, printed and logged by its callers, holds none of the values
// the database's errors in it quote.
func Verify(ctx context.Context, cfg *config.Backfill, opts VerifyOptions) (_ *VerifyReport, err error) {
	defer func() { err = dberr.Cut(sourceLost(cfg, err)) }()
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	opts.Samples = cmp.Or(opts.Samples, 10)
	opts.Chunk = cmp.Or(opts.Chunk, 10_000)
	report := &VerifyReport{Started: time.Now(), NotCompared: []string{}}
	for _, t := range cfg.Tables {
		// A table named in opts.Tables that goes to the API is refused
		// by plan.
		if t.TargetAPI != nil && len(opts.Tables) == 0 {
			report.NotCompared = append(report.NotCompared, t.Name)
		}
	}
	if err := checkNames(cfg, opts.Tables, nil); err != nil {
		return nil, err
	}
	src, dst, err := connect(ctx, cfg, 2)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	defer dst.Close()
	pol := policy{cmp.Or(opts.resumePause, resumePause)}
	tables, err := planResuming(ctx, cfg, opts.Tables, src, dst, pol, opts.Log, true)
	if err != nil {
		return nil, err
	}
	l, err := openLedger(ctx, dst, true) // only to read which rows failed
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		start := time.Now()
		// A lost connection compares the table again whole, on the
		// policy a backfill resumes on: the comparison writes nothing,
		// and each try counts from nothing.
		var d TableDiff
		err := pol.resumingGone(ctx, opts.Log, "the comparison of "+t.name, []any{"table", t.name, "step", "verify"}, pinging(src, dst, true),
			func() (err error) {
				d, err = verifyTable(ctx, src, dst, l, t, opts)
				return sourceLost(cfg, err)
			})
		var gone *databaseGone
		if errors.As(err, &gone) {
			return nil, gone
		}
		if err != nil {
			return nil, fmt.Errorf("verify %s: %w", t.name, err)
		}
		d.Seconds = time.Since(start).Seconds()
		report.Tables = append(report.Tables, d)
		opts.Log.Info("verified", "table", t.name, "legacy_rows", d.LegacyRows, "modern_rows", d.ModernRows,
			"missing", d.Missing, "extra", d.Extra, "changed", d.Changed, "null_keys", d.NullKeys, "duration_s", d.Seconds)
		if m := opts.Metrics; m != nil {
			m.Deviations.WithLabelValues(t.name, "missing").Set(float64(d.Missing + d.NullKeys))
			m.Deviations.WithLabelValues(t.name, "extra").Set(float64(d.Extra))
			m.Deviations.WithLabelValues(t.name, "changed").Set(float64(d.Changed))
		}
	}
	report.Finished = time.Now()
	if opts.Metrics != nil {
		opts.Metrics.LastVerify.Set(float64(report.Finished.Unix()))
	}
	return report, nil
}

// verifyTable compares one table.
func verifyTable(ctx context.Context, src *sql.DB, dst *pgxpool.Pool, l *ledger, t *table, opts VerifyOptions) (d TableDiff, err error) {
	d = TableDiff{Table: t.name, MissingKeys: []string{}, ExtraKeys: []string{}, ChangedRows: []ChangedRow{}}
	var queries atomic.Int64
	defer func() { d.Queries = queries.Load() }()
	c, err := newComparer(ctx, src, dst, t, &queries)
	if err != nil {
		return d, err
	}
	defer c.close()
	n, err := c.compareAll(ctx, opts.Chunk, nil, func(b batch, diffs []difference) error {
		var missing [][]byte
		for _, df := range diffs {
			if !df.present {
				d.Missing++
				missing = append(missing, df.key)
				d.MissingKeys = sample(d.MissingKeys, t.reportKey(df.key), opts.Samples)
				continue
			}
			d.Changed++
			if len(d.ChangedRows) < opts.Samples {
				d.ChangedRows = append(d.ChangedRows, changedRow(t, b.rows[df.row], df, opts.ShowValues))
			}
		}
		if len(missing) == 0 {
			return nil
		}
		queries.Add(1)
		failed, err := l.countFailed(ctx, t.name, missing)
		d.MissingFailed += failed
		return err
	})
	if err != nil {
		return d, err
	}
	d.LegacyRows, d.ModernRows, d.NullKeys = n.legacy, n.modern, n.nullKeys
	extra, err := c.mayHaveExtras(ctx, n, 0)
	if err != nil {
		return d, err
	}
	if extra {
		if d.Extra, d.ExtraKeys, err = c.extras(ctx, opts.Chunk, nil, opts.Samples); err != nil {
			return d, err
		}
	}
	return d, nil
}

// changedRow describes a row that differs, with values only when asked
// for and never for a redacted column.
func changedRow(t *table, r sourceRow, d difference, show bool) ChangedRow {
	row := ChangedRow{Key: t.reportKey(d.key), Columns: []ColumnDiff{}}
	for _, i := range d.cols {
		c := &t.cols[i]
		cd := ColumnDiff{Column: c.name, Redacted: c.redacted}
		if show && !c.redacted {
			cd.Legacy, cd.Modern = shownValue(t, i, r.vals[i]), d.modern[i]
		}
		row.Columns = append(row.Columns, cd)
	}
	return row
}

// shownValue is a legacy value as --show-values shows it: binary values
// by their MD5 (as modern's are) or in hex.
func shownValue(t *table, i int, v []byte) *string {
	if v == nil {
		return nil
	}
	c := &t.cols[i]
	s := string(c.encode(v))
	switch {
	case hashed(t, i):
		s = "md5:" + string(v)
	case isBinaryType(c.srcType) && !c.binaryUUID():
		s = "0x" + hex.EncodeToString(v)
	}
	return &s
}

func sample(have []string, more string, n int) []string {
	if len(have) < n {
		have = append(have, more)
	}
	return have
}
