package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"strangler/config/configfile"
	"strangler/domain"
	"strangler/internal/filecap"
	"strangler/internal/human"
	"strangler/store"
)

// runStore dispatches `strangler store SUBCOMMAND`, the commands that work
// on the state store itself, run next to the facade (a new subcommand is
// one more case).
func runStore(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"store: want backup, verify or rekey"}
	}
	switch sub, rest := args[0], args[1:]; sub {
	case "backup":
		return storeBackup(ctx, rest, getenv, stdout, stderr)
	case "verify":
		return storeVerify(ctx, rest, stdout, stderr)
	case "rekey":
		return runRekey(ctx, rest, getenv, stdout, stderr)
	default:
		return usageError{fmt.Sprintf("store: unknown subcommand %q; want backup, verify or rekey", sub)}
	}
}

func storeBackup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("store backup", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: strangler store backup --config FILE OUT

Copies the embedded state store the configuration names to OUT, a new
file, while the facade keeps serving: one consistent snapshot of the
flags, the audit log, the dual-write journal and the counts. Then checks
the copy as 'strangler store verify' does.

`)
		fs.PrintDefaults()
	}
	path := fs.String("config", "", "configuration `file` naming the store")
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	switch {
	case *path == "":
		return usageError{"store backup: --config FILE is required"}
	case len(rest) != 1 || rest[0] == "":
		// An empty name ("$OUT" unset) would copy the whole store first,
		// then fail to name the copy.
		return usageError{"store backup: name one file to write the backup to"}
	}
	cfg, err := configfile.Load(*path, configfile.Env{Getenv: getenv, ReadFile: filecap.Read})
	if err != nil {
		return err
	}
	out := rest[0]
	start := time.Now()
	if err := store.Backup(ctx, string(cfg.Store), out); err != nil {
		return err
	}
	size := ""
	if fi, err := os.Stat(out); err == nil {
		size = " (" + human.Bytes(fi.Size()) + ")"
	}
	fmt.Fprintf(stdout, "backed up %s to %s%s in %s\n", cfg.Store.Redacted(), out, size, time.Since(start).Round(time.Millisecond))
	return verifyBackup(ctx, out, stdout)
}

func storeVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("store verify", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: strangler store verify FILE

Checks a backup of the embedded state store: SQLite's integrity check over
every page, the schema version, and what it holds. Exits 1 if it is
damaged or not a store this strangler can restore.
`)
	}
	rest, err := parseArgs(fs, args, stderr)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError{"store verify: name one backup file"}
	}
	return verifyBackup(ctx, rest[0], stdout)
}

// verifyBackup checks the backup at path and prints what it holds.
func verifyBackup(ctx context.Context, path string, stdout io.Writer) error {
	rep, err := store.Verify(ctx, path)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	tw := newTable(stdout)
	fmt.Fprintf(tw, "  integrity:\tok\n")
	fmt.Fprintf(tw, "  schema version:\t%d (this strangler knows %d)\n", rep.SchemaVersion, rep.KnownVersion)
	fmt.Fprintf(tw, "  overrides:\t%d\n", rep.Overrides)
	fmt.Fprintf(tw, "  audit entries:\t%d\n", rep.AuditEntries)
	fmt.Fprintf(tw, "  open dual writes:\t%d pending, %d dead, %d unknown, %d sent\n",
		rep.Repairs[domain.StatePending], rep.Repairs[domain.StateDead], rep.Repairs[domain.StateUnknown], rep.Repairs[domain.StateSent])
	return tw.Flush()
}
