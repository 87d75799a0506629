// Command strangler is a strangler-fig migration facade: it serves an
// unchanged API while its endpoints move, one by one, from a legacy backend
// to a modern one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"strangler/internal/human"
)

func main() {
	refuseCoreDumps()
	args := os.Args[1:]
	ctx, stopped := stopOnSignal(oneShot(args))
	err := run(ctx, args, os.Getenv, os.Stdout, os.Stderr)
	if sig := stopped(); sig != nil {
		exitBy(sig)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		printError(os.Stderr, err)
		var u usageError
		if errors.As(err, &u) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// printError writes the error a command ended with, each character a
// terminal acts on as a \u escape: it may quote a database's message
// about a legacy row (a backfill table that stopped) or a backup file's
// bytes, which a terminal must not act on.
func printError(w io.Writer, err error) {
	fmt.Fprintln(w, "strangler:", human.Printable(err.Error(), true))
}

// oneShot says whether args run a command that does one thing and exits
// (config check, store backup, the admin commands), rather than one that
// runs until stopped and shuts down in its own time on a signal (serve,
// demo, a reference API, backfill and verify, which finish their batch).
func oneShot(args []string) bool {
	if len(args) == 0 {
		return true
	}
	switch args[0] {
	case "serve", "demo", "legacy", "modern", "backfill", "verify":
		return false
	}
	return true
}

// oneShotGrace is how long a one-shot command has, after SIGINT or
// SIGTERM cancelled its context, to return before the process exits
// anyway: a file read or a database lock wait does not watch the context.
const oneShotGrace = time.Second

// stopOnSignal returns a context cancelled by the first SIGINT or SIGTERM.
// For a one-shot command the process then exits, once the command has
// returned (main calls exitBy with what stopped reports) or after
// oneShotGrace at the latest. A long-running command only sees its
// context cancelled, and stopped reports nil.
func stopOnSignal(oneShot bool) (ctx context.Context, stopped func() os.Signal) {
	if !oneShot {
		ctx, _ := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
		return ctx, func() os.Signal { return nil }
	}
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	got := make(chan os.Signal, 1)
	go func() {
		sig := <-sigs
		got <- sig
		cancel()
		time.Sleep(oneShotGrace)
		exitBy(sig)
	}()
	return ctx, func() os.Signal {
		select {
		case sig := <-got:
			return sig
		default:
			return nil
		}
	}
}

// exitBy ends a one-shot command stopped by sig with 128 plus the
// signal's number (130 for SIGINT, 143 for SIGTERM), as a shell reports a
// command the signal killed.
func exitBy(sig os.Signal) {
	fmt.Fprintf(os.Stderr, "strangler: stopped by %v\n", sig)
	n, _ := sig.(syscall.Signal)
	os.Exit(128 + int(n))
}
