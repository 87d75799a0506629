package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"strangler/config"
	"strangler/config/configfile"
	"strangler/internal/filecap"
)

func runConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"config: want check [--strict] FILE... or print FILE"}
	}
	strict := false
	var files []string
	for _, a := range args[1:] {
		switch {
		case a == "-h" || a == "--help" || a == "-help":
			fmt.Fprint(stdout, "usage: strangler config check [--strict] FILE...\n       strangler config print FILE\n"+
				"--strict: a warning fails the check too\n")
			return flag.ErrHelp
		case args[0] == "check" && (a == "--strict" || a == "-strict"):
			strict = true
		case strings.HasPrefix(a, "-"):
			// Read as a file name, --lint was "stat --lint: no such
			// file or directory". A file named so is ./-name.
			return usageError{fmt.Sprintf("config %s: unknown flag %q; it takes file names only (write ./%s for a file of that name)", args[0], a, a)}
		default:
			files = append(files, a)
		}
	}
	env := configfile.Env{Getenv: getenv, ReadFile: filecap.Read}
	switch args[0] {
	case "check":
		if len(files) == 0 {
			return usageError{"config check: name at least one file"}
		}
		failed := 0
		for _, path := range files {
			cfg, err := configfile.Load(path, env)
			if err != nil {
				fmt.Fprintln(stderr, err)
				failed++
				continue
			}
			if !printNotices(stderr, cfg, strict) {
				failed++
				continue
			}
			fmt.Fprintf(stdout, "%s: ok, %d routes\n", path, len(cfg.Routes))
		}
		switch {
		case failed > 0 && strict:
			return fmt.Errorf("config check --strict: %d of %d files have errors or warnings", failed, len(files))
		case failed > 0:
			return fmt.Errorf("config check: %d of %d files have errors", failed, len(files))
		}
		return nil
	case "print":
		if len(files) != 1 {
			return usageError{"config print: name one file"}
		}
		cfg, err := configfile.Load(files[0], env)
		if err != nil {
			var errs config.Errors
			if errors.As(err, &errs) {
				fmt.Fprintln(stderr, err)
				return errors.New("config print: the file has errors")
			}
			return err
		}
		out, err := configfile.Print(cfg)
		if err != nil {
			return err
		}
		_, err = stdout.Write(out)
		return err
	}
	return usageError{fmt.Sprintf("config: unknown subcommand %q; want check or print", args[0])}
}

// printNotices prints, in file order, what cfg turns off (Unsafe), as
// errors, and its warnings, each after "warning: ". It reports whether
// the file passes: with nothing unsafe, and under strict no warning.
func printNotices(w io.Writer, cfg *config.Config, strict bool) bool {
	all := slices.Clone(cfg.Unsafe)
	for _, e := range cfg.Warnings {
		e.Msg = "warning: " + e.Msg
		all = append(all, e)
	}
	slices.SortStableFunc(all, func(a, b config.Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	for _, e := range all {
		fmt.Fprintln(w, e)
	}
	return len(cfg.Unsafe) == 0 && (!strict || len(cfg.Warnings) == 0)
}
