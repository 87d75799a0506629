package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

const usage = `usage: strangler <command> [flags]

commands:
  serve --config FILE       run the facade
  demo                      run the facade with built-in legacy and modern APIs
  config check [--strict] FILE...
                            validate configuration files (--strict: a warning fails too)
  config print FILE         show the effective configuration, secrets redacted
  backfill --config FILE    copy legacy rows to the modern database (resumable)
  verify --config FILE      compare the legacy and the modern database
  legacy serve, modern serve
                            run one reference API alone (--listen, --dsn)
  routes list|set|report    read and flip route flags through the admin API
  repairs list|show|retry|discard
                            the dual-write repair queue
  diffs                     the shadow routes' mismatch samples (--noise: learned noise)
  version                   the module version and VCS revision of this binary
  healthcheck [--admin URL] exit 0 when the admin listener's /readyz answers 200
  store rekey --config FILE encrypt the state store under the first store_encryption key
  store backup --config FILE OUT
                            copy the embedded state store while the facade serves
  store verify FILE         check a backup of the embedded state store
  audit verify --config FILE
                            check the audit log's hash chain; names the first entry that does not match
  audit export --config FILE [--since DATE] [--format jsonl|csv]
                            write the audit log with its hashes, for an auditor or a SIEM

The admin commands take --admin URL (env STRANGLER_ADMIN, default
http://127.0.0.1:9901) and the token only from STRANGLER_ADMIN_TOKEN,
never from a flag, so it stays out of shell history.
`

// usageError is a mistake in the command line; main exits with status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// run is the whole program; main only adds the process environment and the
// exit code, so tests run it in-process.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{"no command given"}
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return runServe(ctx, rest, getenv, stderr)
	case "demo":
		return runDemo(ctx, rest, getenv, stdout, stderr)
	case "config":
		return runConfig(rest, getenv, stdout, stderr)
	case "backfill":
		return runBackfill(ctx, rest, getenv, stdout, stderr)
	case "verify":
		return runVerify(ctx, rest, getenv, stdout, stderr)
	case "legacy", "modern":
		return runRefAPI(ctx, cmd, rest, getenv, stderr)
	case "routes":
		return toTerminal(stdout, func(out io.Writer) error { return runRoutes(ctx, rest, getenv, out, stderr) })
	case "repairs":
		return toTerminal(stdout, func(out io.Writer) error { return runRepairs(ctx, rest, getenv, out, stderr) })
	case "diffs":
		return toTerminal(stdout, func(out io.Writer) error { return runDiffs(ctx, rest, getenv, out, stderr) })
	case "version":
		return runVersion(rest, stdout, stderr)
	case "healthcheck":
		return runHealthcheck(ctx, rest, getenv, stdout, stderr)
	case "store":
		return runStore(ctx, rest, getenv, stdout, stderr)
	case "audit":
		return runAudit(ctx, rest, getenv, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}

// parseFlags parses a subcommand's flags, turning flag errors into usage
// errors.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err // the usage is printed; main exits 0
		}
		return usageError{strings.TrimSpace(err.Error())}
	}
	if name := repeatedFlag(fs, args); name != "" {
		return usageError{fmt.Sprintf("%s: --%s is given twice; give it once", fs.Name(), name)}
	}
	return nil
}

// repeatable is implemented by the values of flags that may be given
// several times, each adding to the last (--keys).
type repeatable interface{ repeatable() }

// repeatedFlag names a flag args give twice, or is "". The flag package
// keeps the last: serve --config a.yaml --config b.yaml would serve
// b.yaml, and routes set --mode modern --mode legacy flip to legacy,
// whichever of the two the operator meant.
func repeatedFlag(fs *flag.FlagSet, args []string) string {
	seen := map[string]bool{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if len(a) < 2 || a[0] != '-' {
			continue // a positional argument; flags may follow it (parseArgs)
		}
		name, _, hasValue := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		if _, ok := f.Value.(repeatable); !ok && seen[name] {
			return name
		}
		seen[name] = true
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !hasValue && !(ok && b.IsBoolFlag()) {
			i++ // its value, which may start with -
		}
	}
	return ""
}

// outputFile refuses, before the command does any work, a report flag
// naming a directory or a socket, which no report can be written to (the
// write would fail at the end, after all the work). A named pipe or a
// character device is written to as a file is: --report-json /dev/stdout
// is how a report goes down a pipeline.
func outputFile(cmd, flag, path string) error {
	if path == "" {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil // absent: created when the report is written
	}
	switch m := fi.Mode(); {
	case m.IsDir():
		return fmt.Errorf("%s: --%s: %s is a directory: want a file to write the report to", cmd, flag, path)
	case m&fs.ModeSocket != 0:
		return fmt.Errorf("%s: --%s: %s is a socket: want a file to write the report to", cmd, flag, path)
	}
	return nil
}
