package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"strangler/config/configfile"
	"strangler/domain"
	"strangler/internal/dsn"
	"strangler/internal/filecap"
	"strangler/internal/human"
	"strangler/internal/tty"
	"strangler/store"
)

// runAudit is `strangler audit verify|export`: the audit log's hash
// chain, read straight from the state store the configuration names.
func runAudit(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"audit: want verify or export"}
	}
	switch args[0] {
	case "verify":
		return runAuditVerify(ctx, args[1:], getenv, stdout, stderr)
	case "export":
		return runAuditExport(ctx, args[1:], getenv, stdout, stderr)
	}
	return usageError{fmt.Sprintf("audit: unknown subcommand %q; want verify or export", args[0])}
}

func runAuditVerify(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	path := fs.String("config", "", "configuration `file` naming the state store")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if err := noArgs(fs, "audit verify", *path); err != nil {
		return err
	}
	st, err := openAuditStore(ctx, *path, getenv, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	v, err := st.VerifyAudit(ctx)
	if err != nil {
		return fmt.Errorf("audit verify: %w", err)
	}
	if b := v.Break; b != nil {
		fmt.Fprintf(stdout, "BROKEN at entry %d: %s.\n%d entries before it match.\n", b.ID, b.Problem, v.Entries)
	} else {
		fmt.Fprintf(stdout, "OK: %d entries, each matching its hash and following the one before it.\nHead: entry %d, sha256 %s\n",
			v.Entries, v.Head.ID, v.Head.Hash)
	}
	if h := v.Head; h.PreChainLastID > 0 {
		fmt.Fprintf(stdout, "Entries up to %d were written before the store had a hash chain; they were chained as they were on %s UTC, and a change to them before then cannot be detected.\n",
			h.PreChainLastID, h.StartedAt.UTC().Format(time.DateTime))
	}
	if b := v.Break; b != nil {
		return fmt.Errorf("audit verify: the chain is broken at entry %d", b.ID)
	}
	return nil
}

func runAuditExport(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("audit export", flag.ContinueOnError)
	path := fs.String("config", "", "configuration `file` naming the state store")
	since := fs.String("since", "", "the entries from the first at or after this `date` (2026-03-31, from its start in UTC) or RFC 3339 time on")
	format := fs.String("format", "jsonl", "`format`: jsonl (one JSON object a line) or csv")
	if err := parseFlags(fs, args, stderr); err != nil {
		return err
	}
	if err := noArgs(fs, "audit export", *path); err != nil {
		return err
	}
	from, err := parseSince(*since)
	if err != nil {
		return err
	}
	// Details quote gates' errors, which quote backends' answers, and
	// older entries hold reasons as operators typed them: each character
	// a terminal acts on is written as a \u escape (human.PrintableWriter).
	// In JSON that is JSON's own escape, the same entry. CSV has none, so
	// its values are escaped only on a terminal, where nobody recomputes
	// a hash; a file gets the exact values the hashes cover.
	out := human.NewPrintableWriter(stdout)
	var w auditWriter
	switch *format {
	case "jsonl":
		w = newJSONLWriter(out)
	case "csv":
		if tty.Is(stdout) {
			w = newCSVWriter(out)
		} else {
			w = newCSVWriter(stdout)
		}
	default:
		return usageError{fmt.Sprintf("audit export: --format %q; want jsonl or csv", *format)}
	}
	st, err := openAuditStore(ctx, *path, getenv, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.WalkAudit(ctx, from, w.write); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	if err := w.flush(); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("audit export: %w", err)
	}
	return nil
}

// noArgs checks what the audit commands share: --config and no
// arguments.
func noArgs(fs *flag.FlagSet, cmd, path string) error {
	switch {
	case path == "":
		return usageError{cmd + ": --config FILE is required"}
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("%s: unexpected argument %q", cmd, fs.Arg(0))}
	}
	return nil
}

// parseSince reads --since: a day (from its start, UTC) or an RFC 3339
// time; "" is the beginning.
func parseSince(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return time.Time{}, usageError{fmt.Sprintf("audit export: --since %q; want a date like 2026-03-31 or a time like 2026-03-31T08:00:00Z", v)}
}

// openAuditStore opens the state store the configuration at path names,
// refusing an embedded store that does not exist rather than creating an
// empty one whose chain would verify.
func openAuditStore(ctx context.Context, path string, getenv func(string) string, stderr io.Writer) (*store.Store, error) {
	cfg, err := configfile.Load(path, configfile.Env{Getenv: getenv, ReadFile: filecap.Read})
	if err != nil {
		return nil, err
	}
	if file, _, ok := dsn.SQLite(string(cfg.Store)); ok {
		if _, err := os.Stat(file); err != nil {
			return nil, fmt.Errorf("%s: store: %w; has the facade run with this configuration, from this directory?", path, err)
		}
	}
	log, err := newLogger(stderr, getenv)
	if err != nil {
		return nil, err
	}
	// With the file's keys: a store opened without them reads the
	// encrypted hash key as lost and draws a new one in its place, so
	// every resource and value hashed before would hash otherwise.
	return store.Open(ctx, string(cfg.Store), log, store.WithEncryption(cfg.EncryptionKeys()))
}

// auditWriter writes exported entries in one format.
type auditWriter interface {
	write(domain.AuditEntry) error
	flush() error
}

// auditRecord is an exported entry. Times, percents and forced are
// written as the entry's hash covers them (store.AuditTime,
// store.AuditPercent), so that an auditor can recompute each hash from
// the export alone (README, "Roles and the audit trail").
type auditRecord struct {
	ID          int64        `json:"id"`
	At          string       `json:"at"`
	Actor       string       `json:"actor"`
	Action      string       `json:"action"`
	Route       string       `json:"route"`
	FromMode    string       `json:"from_mode"`
	ToMode      string       `json:"to_mode"`
	FromPercent *json.Number `json:"from_percent"`
	ToPercent   *json.Number `json:"to_percent"`
	Reason      string       `json:"reason"`
	Forced      bool         `json:"forced"`
	Detail      string       `json:"detail"`
	PrevHash    string       `json:"prev_hash"`
	Hash        string       `json:"hash"`
}

func toAuditRecord(e domain.AuditEntry) auditRecord {
	number := func(p *float64) *json.Number {
		if p == nil {
			return nil
		}
		n := json.Number(store.AuditPercent(p))
		return &n
	}
	return auditRecord{
		ID: e.ID, At: store.AuditTime(e.At), Actor: e.Actor, Action: e.Action, Route: e.Route,
		FromMode: string(e.FromMode), ToMode: string(e.ToMode), FromPercent: number(e.FromPercent), ToPercent: number(e.ToPercent),
		Reason: e.Reason, Forced: e.Forced, Detail: e.Detail, PrevHash: e.PrevHash, Hash: e.Hash,
	}
}

type jsonlWriter struct{ enc *json.Encoder }

func newJSONLWriter(w io.Writer) *jsonlWriter {
	enc := json.NewEncoder(w)
	// Readable: < and & as they are, not \u003c and \u0026.
	enc.SetEscapeHTML(false)
	return &jsonlWriter{enc}
}

func (w *jsonlWriter) write(e domain.AuditEntry) error { return w.enc.Encode(toAuditRecord(e)) }
func (w *jsonlWriter) flush() error                    { return nil }

// csvHeader names the CSV export's columns.
const csvHeader = "id,at,actor,action,route,from_mode,to_mode,from_percent,to_percent,reason,forced,detail,prev_hash,hash"

// csvWriter writes RFC 4180 CSV. A value a spreadsheet would take for a
// formula (starting with =, +, -, @, a tab or a carriage return: OWASP's
// "CSV injection") gets a leading ', and so does a value that starts with
// ' itself, so that removing one leading ' gives back the exact value the
// hash covers (README, "Roles and the audit trail"). Reasons come from
// every operator and token names from the configuration; opening the
// export must not run what one of them wrote.
type csvWriter struct {
	w      *csv.Writer
	header bool
}

func newCSVWriter(w io.Writer) *csvWriter { return &csvWriter{w: csv.NewWriter(w)} }

func (w *csvWriter) writeHeader() error {
	w.header = true
	return w.w.Write(strings.Split(csvHeader, ","))
}

func (w *csvWriter) write(e domain.AuditEntry) error {
	if !w.header {
		if err := w.writeHeader(); err != nil {
			return err
		}
	}
	row := []string{
		strconv.FormatInt(e.ID, 10), store.AuditTime(e.At), e.Actor, e.Action, e.Route,
		string(e.FromMode), string(e.ToMode), store.AuditPercent(e.FromPercent), store.AuditPercent(e.ToPercent),
		e.Reason, strconv.FormatBool(e.Forced), e.Detail, e.PrevHash, e.Hash,
	}
	for i, v := range row {
		row[i] = csvText(v)
	}
	return w.w.Write(row)
}

// csvText is v as a CSV cell no spreadsheet evaluates: with a leading '
// when v starts with a character that makes a formula, or with '.
func csvText(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r'", rune(v[0])) {
		return "'" + v
	}
	return v
}

func (w *csvWriter) flush() error {
	if !w.header {
		// An empty export still says what its columns are.
		if err := w.writeHeader(); err != nil {
			return err
		}
	}
	w.w.Flush()
	return w.w.Error()
}
