package backfill

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"time"

	"strangler/internal/human"
)

//go:embed report.html
var reportHTML string

var reportPage = template.Must(template.New("report").Funcs(template.FuncMap{
	"n": func(v any) string {
		switch v := v.(type) {
		case int64:
			return human.Count(v)
		case float64:
			return human.Count(int64(v))
		}
		return fmt.Sprint(v)
	},
}).Parse(reportHTML))

// WriteHTML writes the report as a page to open in a browser: a verdict,
// the counts per table with a bar, and the failures by reason. It names
// keys, never values.
func (r *Report) WriteHTML(w io.Writer) error {
	type row struct {
		TableReport
		Took                              string
		Rate                              float64
		WrittenPct, PresentPct, FailedPct float64
	}
	type sequenceRow struct {
		Table string
		SequenceMove
	}
	type failureRow struct {
		Table, Reason, Keys string
		Count               int64
	}
	page := struct {
		Title, Duration, Verdict, VerdictClass string
		// Error is the run's, as Failures' reasons and keys are shown.
		Error     string
		Report    *Report
		Tables    []row
		Failures  []failureRow
		Sequences []sequenceRow
	}{Title: "Backfill report", Report: r, Duration: r.Finished.Sub(r.Started).Round(time.Second).String(),
		Error: human.Printable(r.Error, false)}
	if r.DryRun {
		page.Title = "Backfill report (dry run)"
	}
	for _, t := range r.Tables {
		pct := func(n int64) float64 {
			if t.Read == 0 {
				return 0
			}
			return 100 * float64(n) / float64(t.Read)
		}
		page.Tables = append(page.Tables, row{TableReport: t, Rate: t.RowsPerSecond,
			Took:       (time.Duration(t.Seconds * float64(time.Second))).Round(time.Millisecond).String(),
			WrittenPct: pct(t.Written()), PresentPct: pct(t.Present), FailedPct: pct(t.Failed)})
		for _, m := range t.Sequences {
			page.Sequences = append(page.Sequences, sequenceRow{t.Name(), m})
		}
		for _, f := range t.Failures {
			// html/template escapes markup, not what a browser acts on
			// as a terminal does: U+202E shows what follows reversed.
			page.Failures = append(page.Failures, failureRow{t.Name(), human.Printable(f.Reason, false), joinKeys(f.SampleKeys), f.Count})
		}
	}
	switch failed := r.Failed(); {
	case r.Error != "":
		page.Verdict, page.VerdictClass = "The run, or some of its tables, stopped before they finished; run it again to resume where they stopped.", "bad"
	case failed > 0:
		page.Verdict, page.VerdictClass = fmt.Sprintf("%s rows could not be copied; everything else was.", human.Count(failed)), "warn"
	default:
		page.Verdict, page.VerdictClass = "Every row read was copied.", "ok"
	}
	return reportPage.Execute(w, page)
}
