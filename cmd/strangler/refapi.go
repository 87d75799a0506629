package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"strangler/internal/golog"
	"strangler/legacy"
	"strangler/modern"
)

// runRefAPI runs one reference API alone, `strangler legacy serve` or
// `strangler modern serve`, so the facade can be tried against them as
// separate processes.
func runRefAPI(ctx context.Context, side string, args []string, getenv func(string) string, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "serve" {
		return usageError{fmt.Sprintf("%s: want %s serve [--listen ADDR] [--dsn URL] [--seed N]", side, side)}
	}
	fs := flag.NewFlagSet(side+" serve", flag.ContinueOnError)
	def := map[string]string{"legacy": "127.0.0.1:8081", "modern": "127.0.0.1:8082"}[side]
	listen := fs.String("listen", def, "`address` to serve the API on")
	scheme := map[string]string{"legacy": "mysql://user:pass@host:3306/db", "modern": "postgres://user:pass@host:5432/db"}[side]
	dsn := fs.String("dsn", "", "database `URL` ("+scheme+"); none: the demo's in-memory store")
	seed := fs.Int64("seed", 0, "give an empty database the demo's synthetic patients 1…`N`")
	var faults modern.Faults
	if side == "modern" {
		fs.IntVar(&faults.Unavailable, "fail-503", 0, "answer `PCT` percent of imports' Idempotency-Keys 503 once (with --dsn)")
		fs.IntVar(&faults.TooMany, "fail-429", 0, "answer `PCT` percent of imports' Idempotency-Keys 429 once, with Retry-After (with --dsn)")
		fs.DurationVar(&faults.JobTime, "job-time", 0, "each import starts a job pending this `long` (GET /admin/jobs) (with --dsn)")
	}
	if err := parseFlags(fs, args[1:], stderr); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s serve: unexpected argument %q", side, fs.Arg(0))}
	}
	switch {
	case *seed != 0 && *dsn == "":
		return usageError{fmt.Sprintf("%s serve: --seed needs --dsn (the in-memory store has its demo patients)", side)}
	case *seed < 0:
		return usageError{fmt.Sprintf("%s serve: --seed %d: want a number of patients, 0 or more", side, *seed)}
	case faults.Unavailable < 0 || faults.Unavailable > 100 || faults.TooMany < 0 || faults.TooMany > 100:
		return usageError{fmt.Sprintf("%s serve: --fail-503 and --fail-429 want a percent from 0 to 100", side)}
	case faults.JobTime < 0:
		return usageError{fmt.Sprintf("%s serve: --job-time %s: want a duration, 0 or more", side, faults.JobTime)}
	}
	log, err := newLogger(stderr, getenv)
	if err != nil {
		return err
	}
	log = log.With("backend", side)
	h, closeDB, err := referenceAPI(ctx, side, *dsn, *seed, faults, log)
	if err != nil {
		return err
	}
	defer closeDB()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: golog.Logger(log, slog.LevelDebug)}
	store := "memory"
	if *dsn != "" {
		store = "database"
	}
	log.Info("serving", "listen", ln.Addr().String(), "store", store)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// referenceAPI returns a side's reference API: over its database when dsn
// (modern: with the import endpoint and admin calls, misbehaving per faults)
// is set (migrated, seeded with patients 1…seed if empty), over the demo's
// in-memory store otherwise.
func referenceAPI(ctx context.Context, side, dsn string, seed int64, faults modern.Faults, log *slog.Logger) (http.Handler, func(), error) {
	switch {
	case side == "legacy" && dsn == "":
		return legacy.NewDemo(log), func() {}, nil
	case side == "modern" && dsn == "":
		return modern.NewDemo(log), func() {}, nil
	case side == "legacy":
		db, err := legacy.Open(ctx, dsn)
		if err != nil {
			return nil, nil, err
		}
		if err := legacy.Seed(ctx, db, seed); err != nil {
			db.Close()
			return nil, nil, err
		}
		return legacy.New(db, log), func() { db.Close() }, nil
	default:
		pool, err := modern.Open(ctx, dsn)
		if err != nil {
			return nil, nil, err
		}
		if err := modern.Seed(ctx, pool, seed); err != nil {
			pool.Close()
			return nil, nil, err
		}
		return modern.NewImports(pool, faults, log).Handler(), pool.Close, nil
	}
}
