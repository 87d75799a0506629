package backfill

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"
)

// Report is what one backfill run did.
type Report struct {
	RunID    int64         `json:"run_id,omitempty"`
	Mode     string        `json:"mode"`
	DryRun   bool          `json:"dry_run"`
	Started  time.Time     `json:"started"`
	Finished time.Time     `json:"finished"`
	Tables   []TableReport `json:"tables"`
	// Error is why the run stopped early, if it did.
	Error string `json:"error,omitempty"`
}

// TableReport is what a run did to one table. In a dry run, the counts are
// what a real run would have done.
type TableReport struct {
	Table string `json:"table"`
	// Read counts source rows read.
	Read int64 `json:"read"`
	// Inserted and Updated count rows written; Present rows that were
	// already there as they are.
	Inserted int64 `json:"inserted"`
	Updated  int64 `json:"updated"`
	Present  int64 `json:"already_present"`
	// Failed counts rows that could not be written; see Failures.
	Failed   int64          `json:"failed"`
	Failures []FailureGroup `json:"failures"`
	// NotInSource counts keys asked for (--keys, read repair, failed rows
	// retried) that the source does not have.
	NotInSource   int64   `json:"not_in_source"`
	Seconds       float64 `json:"duration_seconds"`
	RowsPerSecond float64 `json:"rows_per_second"`
}

// FailureGroup is the failed rows that share a reason.
type FailureGroup struct {
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
	// SampleKeys are a few of the rows' source keys; the ledger has all.
	SampleKeys []string `json:"sample_keys"`
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
	title := "backfill"
	if r.DryRun {
		title = "backfill (dry run: nothing was written; counts are what a run would do)"
	}
	fmt.Fprintf(w, "%s, %s mode, %s\n", title, r.Mode, r.Finished.Sub(r.Started).Round(time.Millisecond))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "table\tread\twritten\talready present\tfailed\tduration\trows/s\t")
	for _, t := range r.Tables {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", t.Table, thousands(t.Read), thousands(t.Written()),
			thousands(t.Present), thousands(t.Failed), (time.Duration(t.Seconds * float64(time.Second))).Round(time.Millisecond),
			thousands(int64(t.RowsPerSecond)))
	}
	tw.Flush()
	for _, t := range r.Tables {
		if t.NotInSource > 0 {
			fmt.Fprintf(w, "%s: %s requested keys are not in the source\n", t.Table, thousands(t.NotInSource))
		}
		for _, g := range t.Failures {
			fmt.Fprintf(w, "%s: %s failed: %s (e.g. key %s)\n", t.Table, thousands(g.Count), g.Reason, joinKeys(g.SampleKeys))
		}
	}
	if r.Error != "" {
		fmt.Fprintf(w, "stopped early: %s\n", r.Error)
	}
}

func joinKeys(keys []string) string {
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += k
	}
	return s
}

// thousands writes n with thousands separators.
func thousands(n int64) string {
	s := fmt.Sprint(n)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if neg {
		return "-" + string(out)
	}
	return string(out)
}

// sampleKeys is how many keys a failure group keeps.
const sampleKeys = 5

// tableStats counts one table's rows as a run goes, for the progress
// display, the metrics and the report.
type tableStats struct {
	name string
	// estimate is the rows expected this run, 0 if unknown.
	estimate                                              atomic.Int64
	read, inserted, updated, present, failed, notInSource atomic.Int64
	done                                                  atomic.Bool

	mu      sync.Mutex
	first   time.Time
	last    time.Time
	reasons map[string]*FailureGroup
}

func newTableStats(name string) *tableStats {
	return &tableStats{name: name, reasons: map[string]*FailureGroup{}}
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
		g := s.reasons[f.reason]
		if g == nil {
			g = &FailureGroup{Reason: f.reason}
			s.reasons[f.reason] = g
		}
		g.Count++
		if len(g.SampleKeys) < sampleKeys {
			g.SampleKeys = append(g.SampleKeys, f.key)
		}
	}
}

func (s *tableStats) report() TableReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := TableReport{
		Table: s.name, Read: s.read.Load(), Inserted: s.inserted.Load(), Updated: s.updated.Load(),
		Present: s.present.Load(), Failed: s.failed.Load(), NotInSource: s.notInSource.Load(),
		Failures: []FailureGroup{},
	}
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
