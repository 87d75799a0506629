package backfill

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"strangler/internal/dberr"
	"strangler/internal/human"
)

// Report is what one backfill run did.
type Report struct {
	RunID    int64         `json:"run_id,omitempty"`
	Mode     string        `json:"mode"`
	DryRun   bool          `json:"dry_run"`
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	Tables   []TableReport `json:"tables"`
	// Sources and Total, in a run over several sources (RunSources), are
	// each source's counts and theirs together.
	Sources []SourceReport `json:"sources,omitempty"`
	Total   *SourceReport  `json:"total,omitempty"`
	// Error is why the run stopped early, if it did.
	Error string `json:"error,omitempty"`
}

// end records how a run ended in its report and returns the run's status
// for the ledger (succeeded, interrupted: ctx ended it, or failed) and
// runErr as the ledger, the report and the command may say it: without
// the values the database's errors in it quote.
func (r *Report) end(ctx context.Context, runErr error) (string, error) {
	runErr = dberr.Cut(runErr)
	switch {
	case runErr == nil:
		return "succeeded", nil
	case ctx.Err() != nil:
		r.Error = runErr.Error()
		return "interrupted", runErr
	default:
		r.Error = runErr.Error()
		return "failed", runErr
	}
}

// ledgerCopy is the report as the API backfill's ledger keeps it: without
// the failure groups, whose reasons carry the API's messages (an API may
// quote the values it refused), kept in the ledger's failed rows alone,
// where store_encryption seals them.
func (r *Report) ledgerCopy() *Report {
	c := *r
	c.Tables = slices.Clone(r.Tables)
	for i := range c.Tables {
		c.Tables[i].Failures = nil
	}
	return &c
}

// TableReport is what a run did to one table. In a dry run, the counts are
// what a real run would have done.
type TableReport struct {
	// Source names the source database read, in a run over several.
	Source string `json:"source,omitempty"`
	Table  string `json:"table"`
	// Read counts source rows read.
	Read int64 `json:"read"`
	// Inserted and Updated count rows written; Present rows that were
	// already there as they are. For a table sent to the API, Inserted
	// counts the rows the API accepted (2xx).
	Inserted int64 `json:"inserted"`
	Updated  int64 `json:"updated"`
	Present  int64 `json:"already_present"`
	// Failed counts rows that could not be written; see Failures.
	Failed   int64          `json:"failed"`
	Failures []FailureGroup `json:"failures"`
	// NotInSource counts keys asked for (--keys, read repair, failed rows
	// retried) that the source does not have.
	NotInSource int64 `json:"not_in_source"`
	// Compared counts source rows compared with the target to find those
	// that changed or appeared below the checkpoint (a plain re-run);
	// only those that differ are read again and counted in Read.
	Compared int64 `json:"compared"`
	// Extra counts target rows with a source key the source no longer
	// has, left in place; Deleted those deleted (--propagate-deletes),
	// DeletedKeys the first few of them. Every delete is also in the
	// ledger's strangler_backfill_deletes.
	// For a table sent to the API (API set), Extra counts rows sent once
	// whose key the source no longer has; the API is not asked to delete.
	Extra int64 `json:"extra"`
	// TakenAsSent counts rows of a table sent to the API, counted in
	// Present too, that the release before per-row hashes sent (at or
	// below its checkpoint) and kept nothing of: recorded as sent with
	// their request as it is now, not sent. A change made to them before
	// the upgrade is not detected.
	TakenAsSent   int64    `json:"taken_as_sent,omitempty"`
	API           bool     `json:"api,omitempty"`
	Deleted       int64    `json:"deleted"`
	DeletedKeys   []string `json:"deleted_keys"`
	Seconds       float64  `json:"duration_seconds"`
	RowsPerSecond float64  `json:"rows_per_second"`
	// Sequences are the target's sequences the run moved forward, before
	// the copy past the source's values and after it past the values
	// copied (sequences: reset).
	Sequences []SequenceMove `json:"sequences,omitempty"`
	// Error is why the table stopped before it was done, if it did; the
	// other tables went on.
	Error string `json:"error,omitempty"`
}

// FailureGroup is the failed rows that share a reason.
type FailureGroup struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
	// SampleKeys are a few of the rows' source keys; the ledger has all.
	SampleKeys []string `json:"sample_keys"`
}

// Name is the table's name in reports: source/table in a run over
// several sources.
func (t TableReport) Name() string {
	if t.Source == "" {
		return t.Table
	}
	return t.Source + "/" + t.Table
}

// Written is the rows inserted or updated.
func (t TableReport) Written() int64 { return t.Inserted + t.Updated }

// Failed is the failed rows of every table.
func (r *Report) Failed() int64 {
	var n int64
	for _, t := range r.Tables {
		n += t.Failed
	}
	return n
}

// WriteText writes the report as a table for a terminal.
func (r *Report) WriteText(w io.Writer) {
	// Keys, reasons and errors come from the legacy data and the
	// databases' messages: nothing in them may act on the terminal, and
	// each stays on its finding's line (human.Printable without lines),
	// or a key holding a newline would write a line of its own.
	p := human.NewPrintableWriter(w)
	defer p.Close()
	w = p
	title := "backfill"
	if r.DryRun {
		title = "backfill (dry run: nothing was written; counts are what a run would do)"
	}
	fmt.Fprintf(w, "%s, %s mode, %s\n", title, r.Mode, r.Finished.Sub(r.Started).Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\tcompared\tread\twritten\talready present\tfailed\tdeleted\tduration\trows/s\t")
	for _, t := range r.Tables {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", t.Name(), human.Count(t.Compared), human.Count(t.Read), human.Count(t.Written()),
			human.Count(t.Present), human.Count(t.Failed), human.Count(t.Deleted), (time.Duration(t.Seconds * float64(time.Second))).Round(time.Millisecond),
			human.Count(int64(t.RowsPerSecond)))
	}
	tw.Flush()
	r.writeSources(w)
	for _, t := range r.Tables {
		if t.Error != "" {
			fmt.Fprintf(w, "%s: stopped: %s\n", t.Name(), human.Printable(t.Error, false))
		}
		if t.NotInSource > 0 {
			fmt.Fprintf(w, "%s: %s requested keys are not in the source\n", t.Name(), human.Count(t.NotInSource))
		}
		for _, g := range t.Failures {
			fmt.Fprintf(w, "%s: %s failed: %s", t.Name(), human.Count(g.Count), human.Printable(g.Reason, false))
			if len(g.SampleKeys) > 0 {
				fmt.Fprintf(w, " (e.g. key %s)", joinKeys(g.SampleKeys))
			}
			fmt.Fprintln(w)
		}
		switch {
		case t.Extra > 0 && t.API:
			fmt.Fprintf(w, "%s: %s rows sent to the API have a key the source no longer has; delete them through the service if they must go\n", t.Name(), human.Count(t.Extra))
		case t.Extra > 0:
			fmt.Fprintf(w, "%s: %s rows in the target have a key the source no longer has; --propagate-deletes deletes them\n", t.Name(), human.Count(t.Extra))
		}
		if t.TakenAsSent > 0 {
			fmt.Fprintf(w, "%s: %s rows at or below the checkpoint of the release before per-row hashes were taken as sent by it, not sent; "+
				"a change made to them before the upgrade is not detected\n", t.Name(), human.Count(t.TakenAsSent))
		}
		for _, m := range t.Sequences {
			if m.BeforeCopy {
				fmt.Fprintf(w, "%s: sequence %s moved from %d to %d before the copy, the largest %s in the source\n", t.Name(), human.Printable(m.Sequence, false), m.From, m.To, human.Printable(m.Column, false))
			} else {
				fmt.Fprintf(w, "%s: sequence %s moved from %d to %d, the largest %s copied\n", t.Name(), human.Printable(m.Sequence, false), m.From, m.To, human.Printable(m.Column, false))
			}
		}
		if t.Deleted > 0 {
			fmt.Fprintf(w, "%s: deleted %s rows whose source row is gone (e.g. key %s; all are in strangler_backfill_deletes)\n",
				t.Name(), human.Count(t.Deleted), joinKeys(t.DeletedKeys))
		}
	}
	if r.Error != "" {
		fmt.Fprintf(w, "stopped early: %s\n", human.Printable(r.Error, false))
	}
}

func joinKeys(keys []string) string {
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += human.Printable(k, false)
	}
	return s
}

// sampleKeys is how many keys a failure group keeps.
const sampleKeys = 5

// maxFailureGroups bounds a table's failure groups. A reason that quotes
// an API's message may differ for every row (naming the row, or a
// request id): a group per row held every message in memory, and the
// report was as long as the table. Reasons past the bound are counted
// together under otherReasons; the ledger keeps each row's own.
const maxFailureGroups = 100

// otherReasons is the failure group of the reasons past maxFailureGroups.
const otherReasons = "other reasons (more than 100 distinct; the failure ledger has each row's)"

// tableStats counts one table's rows as a run goes, for the progress
// display, the metrics and the report.
type tableStats struct {
	name string
	// show is a failed row's key as the report shows it.
	show func(key []byte) string
	// estimate is the rows expected this run, 0 if unknown.
	estimate                                              atomic.Int64
	read, inserted, updated, present, failed, notInSource atomic.Int64
	compared, extra, baselined                            atomic.Int64
	done                                                  atomic.Bool

	mu      sync.Mutex
	first   time.Time
	last    time.Time
	reasons map[string]*FailureGroup
	deleted deleted
	// sequences are the target sequences moved (resetSequences).
	sequences []SequenceMove
	err       error
	// failedNow holds the keys that failed in a dry run, which leaves no
	// trace in the ledger, so that retrying earlier failures skips them
	// as a real run would.
	failedNow map[string]bool
}

func newTableStats(name string, show func([]byte) string, dry bool) *tableStats {
	s := &tableStats{name: name, show: show, reasons: map[string]*FailureGroup{}}
	if dry {
		s.failedNow = map[string]bool{}
	}
	return s
}

// failedInDryRun reports whether key failed earlier in this dry run.
func (s *tableStats) failedInDryRun(key []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failedNow[string(key)]
}

// stop records why the table stopped; it reports whether this is the
// first reason.
func (s *tableStats) stop(err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return false
	}
	s.err = err
	return true
}

// stopped is why the table stopped, or nil.
func (s *tableStats) stopped() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// addDeleted counts rows deleted because their source row is gone.
func (s *tableStats) addDeleted(d deleted) {
	s.addFailures(d.refused)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleted.n += d.n
	s.deleted.keys = append(s.deleted.keys, d.keys...)
}

// active records that work on the table happened now.
func (s *tableStats) active(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first.IsZero() {
		s.first = now
	}
	s.last = now
}

// elapsed is how long the table has been worked on so far.
func (s *tableStats) elapsed(now time.Time) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first.IsZero() {
		return 0
	}
	if s.done.Load() {
		return s.last.Sub(s.first)
	}
	return now.Sub(s.first)
}

func (s *tableStats) addFailures(fs []failure) {
	if len(fs) == 0 {
		return
	}
	s.failed.Add(int64(len(fs)))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range fs {
		if s.failedNow != nil && f.shown == "" {
			s.failedNow[string(f.key)] = true
		}
		s.addFailure(f.reason, cmp.Or(f.shown, s.show(f.key)), 1)
	}
}

// addFailure counts n failures for reason; key is one of them, if any.
// The caller holds s.mu.
func (s *tableStats) addFailure(reason, key string, n int64) {
	g := s.reasons[reason]
	if g == nil && len(s.reasons) >= maxFailureGroups {
		reason = otherReasons
		g = s.reasons[reason]
	}
	if g == nil {
		g = &FailureGroup{Reason: reason, SampleKeys: []string{}}
		s.reasons[reason] = g
	}
	g.Count += n
	if key != "" && len(g.SampleKeys) < sampleKeys {
		g.SampleKeys = append(g.SampleKeys, key)
	}
}

// addNullKeys counts the source rows left out for their NULL key.
func (s *tableStats) addNullKeys(n int64) {
	if n == 0 {
		return
	}
	s.failed.Add(n)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addFailure("the source key is NULL (null_keys: skip)", "", n)
}

func (s *tableStats) report() TableReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := TableReport{
		Table: s.name, Read: s.read.Load(), Inserted: s.inserted.Load(), Updated: s.updated.Load(),
		Present: s.present.Load(), Failed: s.failed.Load(), NotInSource: s.notInSource.Load(),
		Compared: s.compared.Load(), Extra: s.extra.Load(), TakenAsSent: s.baselined.Load(), Deleted: s.deleted.n,
		DeletedKeys: append([]string{}, s.deleted.keys...), Failures: []FailureGroup{},
	}
	if s.err != nil {
		t.Error = s.err.Error()
	}
	t.Sequences = slices.Clone(s.sequences)
	if !s.first.IsZero() {
		t.Seconds = s.last.Sub(s.first).Seconds()
	}
	if t.Seconds > 0 {
		t.RowsPerSecond = float64(t.Read) / t.Seconds
	}
	for _, g := range s.reasons {
		t.Failures = append(t.Failures, *g)
	}
	slices.SortFunc(t.Failures, func(a, b FailureGroup) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Reason, b.Reason))
	})
	return t
}
