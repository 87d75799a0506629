package backfill

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"strangler/config"
)

// VerifyOptions tune a verify; the zero value compares every table.
type VerifyOptions struct {
	// Tables limits the comparison to these tables; empty means all.
	Tables []string
	// Samples is how many keys of each kind of deviation a table's report
	// names; 0 means 10.
	Samples int
	// Chunk is about how many rows one checksum covers before any
	// bisection; 0 means 10,000.
	Chunk int
	// Metrics, if set, gets the deviations per table and kind.
	Metrics *Metrics
	// Log receives a line per table; nil discards them.
	Log *slog.Logger
}

// VerifyReport is what a verify found.
type VerifyReport struct {
	Started  time.Time   `json:"started"`
	Finished time.Time   `json:"finished"`
	Tables   []TableDiff `json:"tables"`
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
	// Changed counts rows on both sides whose mapped columns differ.
	Changed     int64        `json:"changed"`
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

// ColumnDiff is one differing column; the values are left out for
// redacted columns.
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
		n += t.Missing + t.Extra + t.Changed
	}
	return n
}

// WriteText writes the report as a table for a terminal.
func (r *VerifyReport) WriteText(w io.Writer) {
	fmt.Fprintf(w, "verify: %s deviations in %d tables, %s\n", thousands(r.Deviations()), len(r.Tables), r.Finished.Sub(r.Started).Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\tlegacy rows\tmodern rows\tmissing\textra\tchanged\tqueries\tduration\t")
	for _, t := range r.Tables {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t\n", t.Table, thousands(t.LegacyRows), thousands(t.ModernRows),
			thousands(t.Missing), thousands(t.Extra), thousands(t.Changed), t.Queries,
			time.Duration(t.Seconds*float64(time.Second)).Round(time.Millisecond))
	}
	tw.Flush()
	for _, t := range r.Tables {
		if t.Missing > 0 {
			note := ""
			if t.MissingFailed > 0 {
				note = fmt.Sprintf(" (%s of them failed to copy: see the ledger)", thousands(t.MissingFailed))
			}
			fmt.Fprintf(w, "%s: missing in modern%s: %s\n", t.Table, note, moreKeys(t.MissingKeys, t.Missing))
		}
		if t.Extra > 0 {
			fmt.Fprintf(w, "%s: extra in modern: %s\n", t.Table, moreKeys(t.ExtraKeys, t.Extra))
		}
		for _, c := range t.ChangedRows {
			var cols []string
			for _, d := range c.Columns {
				if d.Redacted {
					cols = append(cols, d.Column+" (redacted)")
				} else {
					cols = append(cols, fmt.Sprintf("%s (%s in legacy, %s in modern)", d.Column, quoteOrNull(d.Legacy), quoteOrNull(d.Modern)))
				}
			}
			fmt.Fprintf(w, "%s: changed %s: %s\n", t.Table, c.Key, strings.Join(cols, ", "))
		}
		if extra := t.Changed - int64(len(t.ChangedRows)); extra > 0 {
			fmt.Fprintf(w, "%s: and %s more changed rows\n", t.Table, thousands(extra))
		}
	}
}

func moreKeys(keys []string, n int64) string {
	s := strings.Join(keys, ", ")
	if extra := n - int64(len(keys)); extra > 0 {
		s += fmt.Sprintf(" and %s more", thousands(extra))
	}
	return s
}

func quoteOrNull(s *string) string {
	if s == nil {
		return "NULL"
	}
	return strconv.Quote(*s)
}

// leafRows is the most rows a range may hold on both sides together for
// its rows to be compared one by one rather than split further.
const leafRows = 1000

// Verify compares the legacy and the modern database per cfg's tables.
func Verify(ctx context.Context, cfg *config.Backfill, opts VerifyOptions) (*VerifyReport, error) {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	opts.Samples = cmp.Or(opts.Samples, 10)
	opts.Chunk = cmp.Or(opts.Chunk, 10_000)
	report := &VerifyReport{Started: time.Now()}
	src, dst, err := connect(ctx, cfg, 2)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	defer dst.Close()
	tables, err := plan(ctx, cfg, opts.Tables, src, dst)
	if err != nil {
		return nil, err
	}
	l, err := openLedger(ctx, dst, true) // only to read which rows failed
	if err != nil {
		return nil, err
	}
	for _, t := range tables {
		start := time.Now()
		c := &comparer{t: t, opts: opts, ledger: l, diff: TableDiff{Table: t.name,
			MissingKeys: []string{}, ExtraKeys: []string{}, ChangedRows: []ChangedRow{}}}
		c.legacy, c.modern = newSides(t, src, dst, &c.queries)
		if err := c.run(ctx); err != nil {
			return nil, fmt.Errorf("verify %s: %w", t.name, err)
		}
		c.diff.Queries, c.diff.Seconds = c.queries.Load(), time.Since(start).Seconds()
		report.Tables = append(report.Tables, c.diff)
		d := c.diff
		opts.Log.Info("verified", "table", t.name, "legacy_rows", d.LegacyRows, "modern_rows", d.ModernRows,
			"missing", d.Missing, "extra", d.Extra, "changed", d.Changed, "duration_s", d.Seconds)
		if m := opts.Metrics; m != nil {
			m.Deviations.WithLabelValues(t.name, "missing").Set(float64(d.Missing))
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

// comparer compares one table.
type comparer struct {
	t              *table
	opts           VerifyOptions
	ledger         *ledger
	legacy, modern side
	queries        atomic.Int64
	diff           TableDiff
	changed        []string // sample keys of changed rows
}

// run checksums the whole key space in chunks, one grouped query per
// side, and bisects the chunks whose sums differ.
func (c *comparer) run(ctx context.Context) error {
	var llo, lhi, mlo, mhi int64
	err := both(func() (err error) {
		llo, lhi, c.diff.LegacyRows, err = c.legacy.bounds(ctx)
		return err
	}, func() (err error) {
		mlo, mhi, c.diff.ModernRows, err = c.modern.bounds(ctx)
		return err
	})
	if err != nil || c.diff.LegacyRows == 0 && c.diff.ModernRows == 0 {
		return err
	}
	lo, hi := llo, lhi
	switch {
	case !c.t.intKey:
		lo, hi = 0, 1<<32-1
	case c.diff.LegacyRows == 0:
		lo, hi = mlo, mhi
	case c.diff.ModernRows > 0:
		lo, hi = min(llo, mlo), max(lhi, mhi)
	}
	n := max(c.diff.LegacyRows, c.diff.ModernRows)
	width := max(1, int64(float64(hi-lo+1)*float64(c.opts.Chunk)/float64(n)))
	var lc, mc map[int64]sum
	if err := both(func() (err error) {
		lc, err = c.legacy.chunks(ctx, lo, hi, width)
		return err
	}, func() (err error) {
		mc, err = c.modern.chunks(ctx, lo, hi, width)
		return err
	}); err != nil {
		return err
	}
	var ids []int64
	for id := range lc {
		ids = append(ids, id)
	}
	for id := range mc {
		if _, ok := lc[id]; !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		if lc[id] != mc[id] {
			a := lo + id*width
			if err := c.bisect(ctx, a, min(a+width-1, hi), lc[id], mc[id]); err != nil {
				return err
			}
		}
	}
	return c.describeChanged(ctx)
}

// bisect narrows a range whose sums differ: only the first half is summed,
// the second half's sums follow by subtraction.
func (c *comparer) bisect(ctx context.Context, a, b int64, l, m sum) error {
	if l == m {
		return nil
	}
	// A range empty on one side needs no narrowing: all its rows on the
	// other side differ, and a chunk's rows fit in memory.
	if l.n+m.n <= leafRows || l.n == 0 || m.n == 0 || a == b {
		return c.leaf(ctx, a, b)
	}
	mid := a + (b-a)/2
	var l1, m1 sum
	if err := both(func() (err error) {
		l1, err = c.legacy.sum(ctx, a, mid)
		return err
	}, func() (err error) {
		m1, err = c.modern.sum(ctx, a, mid)
		return err
	}); err != nil {
		return err
	}
	if err := c.bisect(ctx, a, mid, l1, m1); err != nil {
		return err
	}
	return c.bisect(ctx, mid+1, b, sum{l.n - l1.n, l.x ^ l1.x}, sum{m.n - m1.n, m.x ^ m1.x})
}

// leaf compares a small range row by row.
func (c *comparer) leaf(ctx context.Context, a, b int64) error {
	var lh, mh map[string]string
	if err := both(func() (err error) {
		lh, err = c.legacy.hashes(ctx, a, b)
		return err
	}, func() (err error) {
		mh, err = c.modern.hashes(ctx, a, b)
		return err
	}); err != nil {
		return err
	}
	var missing, extra, changed []string
	for k, h := range lh {
		switch mhash, ok := mh[k]; {
		case !ok:
			missing = append(missing, k)
		case mhash != h:
			changed = append(changed, k)
		}
	}
	for k := range mh {
		if _, ok := lh[k]; !ok {
			extra = append(extra, k)
		}
	}
	for _, ks := range [][]string{missing, extra, changed} {
		slices.SortFunc(ks, keyOrder)
	}
	c.diff.Missing += int64(len(missing))
	c.diff.Extra += int64(len(extra))
	c.diff.Changed += int64(len(changed))
	c.diff.MissingKeys = sample(c.diff.MissingKeys, missing, c.opts.Samples)
	c.diff.ExtraKeys = sample(c.diff.ExtraKeys, extra, c.opts.Samples)
	c.changed = sample(c.changed, changed, c.opts.Samples)
	if len(missing) > 0 && c.ledger.exists {
		var failed int64
		if err := c.ledger.db.QueryRow(ctx, `SELECT count(*) FROM strangler_backfill_failures
			WHERE table_name = $1 AND source_key = ANY($2)`, c.t.name, missing).Scan(&failed); err != nil {
			return err
		}
		c.diff.MissingFailed += failed
	}
	return nil
}

// describeChanged finds the differing columns of the sampled changed rows.
func (c *comparer) describeChanged(ctx context.Context) error {
	if len(c.changed) == 0 {
		return nil
	}
	var lv, mv map[string][]*string
	if err := both(func() (err error) {
		lv, err = c.legacy.values(ctx, c.changed)
		return err
	}, func() (err error) {
		mv, err = c.modern.values(ctx, c.changed)
		return err
	}); err != nil {
		return err
	}
	for _, k := range c.changed {
		row := ChangedRow{Key: k}
		l, m := lv[k], mv[k]
		for i, col := range c.t.cols {
			if l == nil || m == nil || equalPtr(l[i], m[i]) {
				continue
			}
			d := ColumnDiff{Column: col.name, Redacted: col.redacted}
			if !col.redacted {
				d.Legacy, d.Modern = l[i], m[i]
			}
			row.Columns = append(row.Columns, d)
		}
		c.diff.ChangedRows = append(c.diff.ChangedRows, row)
	}
	return nil
}

func equalPtr(a, b *string) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

func sample(have, more []string, n int) []string {
	return append(have, more[:min(len(more), max(0, n-len(have)))]...)
}

// keyOrder sorts integer keys by value, others as text.
func keyOrder(a, b string) int {
	x, errA := strconv.ParseInt(a, 10, 64)
	y, errB := strconv.ParseInt(b, 10, 64)
	if errA == nil && errB == nil {
		return cmp.Compare(x, y)
	}
	return strings.Compare(a, b)
}

// both runs f and g at once, one per database.
func both(f, g func() error) error {
	var wg sync.WaitGroup
	var errG error
	wg.Go(func() { errG = g() })
	errF := f()
	wg.Wait()
	if errF != nil {
		return errF
	}
	return errG
}
