package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"strangler/config"
	"strangler/config/configfile"
	"strangler/internal/filecap"
)

func runConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{"config: want check FILE... or print FILE"}
	}
	for _, a := range args[1:] {
		switch {
		case a == "-h" || a == "--help" || a == "-help":
			fmt.Fprint(stdout, "usage: strangler config check FILE...\n       strangler config print FILE\n")
			return flag.ErrHelp
		case strings.HasPrefix(a, "-"):
			// Read as a file name, --strict was "stat --strict: no such
			// file or directory". A file named so is ./-name.
			return usageError{fmt.Sprintf("config %s: unknown flag %q; it takes file names only (write ./%s for a file of that name)", args[0], a, a)}
		}
	}
	env := configfile.Env{Getenv: getenv, ReadFile: filecap.Read}
	switch args[0] {
	case "check":
		if len(args) < 2 {
			return usageError{"config check: name at least one file"}
		}
		failed := 0
		for _, path := range args[1:] {
			cfg, err := configfile.Load(path, env)
			if err != nil {
				fmt.Fprintln(stderr, err)
				failed++
				continue
			}
			for _, w := range cfg.Warnings {
				w.Msg = "warning: " + w.Msg
				fmt.Fprintln(stderr, w)
			}
			fmt.Fprintf(stdout, "%s: ok, %d routes\n", path, len(cfg.Routes))
		}
		if failed > 0 {
			return fmt.Errorf("config check: %d of %d files have errors", failed, len(args)-1)
		}
		return nil
	case "print":
		if len(args) != 2 {
			return usageError{"config print: name one file"}
		}
		cfg, err := configfile.Load(args[1], env)
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
