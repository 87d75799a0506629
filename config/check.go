package config

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Position is where a field's value is in a configuration file.
type Position struct{ Line, Column int }

// Decoded is what decoding a file found besides the values: the problems,
// where each field sits, and what else it read. The YAML decoding lives in
// package configfile, so that this package, which the request path
// imports for the parsed types, links no YAML parser.
type Decoded struct {
	// File is the file's name, as errors show it.
	File string
	// Errs are the problems decoding found.
	Errs Errors
	// Pos maps a field path (routes[2].mode) to where its value is.
	Pos map[string]Position
	// Failed holds the paths that could not be decoded, so validation does
	// not pile a second, misleading error on them.
	Failed map[string]bool
	// Files are the files read through ${file:…} placeholders.
	Files []string
	// Getenv reads the environment (for the state snapshot's default).
	Getenv func(string) string
	// MySQLDriverDSN converts a mysql:// URL for the MySQL driver, whose
	// own parsing checks the URL's parameters; the loader passes it in so
	// that this package links no database driver.
	MySQLDriverDSN func(string) (string, error)
	// CheckPostgres checks a postgres:// URL as the PostgreSQL driver
	// reads it before connecting; passed in for the same reason.
	CheckPostgres func(string) error
	// Now is the clock an admin token's expires is checked against.
	Now func() time.Time
}

// Complete finishes a decoded configuration: it fills in the defaults,
// validates cfg and lists the files to watch. A non-nil error is Errors
// naming every problem found, decoding's and validation's, in file order.
func Complete(cfg *Config, d Decoded) (*Config, error) {
	c := &checker{Decoded: d, dir: filepath.Dir(d.File)}
	c.warnZeroDefaults(cfg)
	cfg.applyDefaults()
	cfg.StateSnapshot = snapshotPath(cfg.StateSnapshot, cfg.Store, d.Getenv)
	c.validate(cfg)
	if len(c.Errs) > 0 {
		return nil, c.Errs.sorted()
	}
	cfg.Warnings, cfg.Unsafe = c.warnings, c.unsafe
	cfg.Sources = append([]string{d.File}, d.Files...)
	// Certificates and CA bundles are watched too: a renewed one is
	// picked up like any other change.
	for _, t := range []*TLS{cfg.TLS, cfg.Admin.TLS} {
		if t != nil {
			cfg.Sources = append(cfg.Sources, t.files()...)
		}
	}
	for _, u := range []Upstream{cfg.Backends.Legacy, cfg.Backends.Modern} {
		if u.TLS != nil && u.TLS.CA != "" {
			cfg.Sources = append(cfg.Sources, u.TLS.CA)
		}
	}
	return cfg, nil
}

// zeroDefault is a setting that 0 leaves at its default: its path, whether
// it is 0, and the default it then takes.
type zeroDefault struct {
	path  string
	zero  bool
	value string
}

// warnZeroDefaults warns of a 0 written for a timeout, a size or a count
// that 0 leaves at its default: Envoy reads timeout: 0s as no timeout, and
// someone used to that would get 15s here without a word (retry:
// {max_attempts: 0}, written for no retries, 5 attempts). It runs before
// the defaults replace the zeros.
func (d *checker) warnZeroDefaults(c *Config) {
	zs := []zeroDefault{
		{"backends.legacy.timeout", c.Backends.Legacy.Timeout == 0, DefaultTimeout.String()},
		{"backends.modern.timeout", c.Backends.Modern.Timeout == 0, DefaultTimeout.String()},
		{"backends.legacy.idle_timeout", c.Backends.Legacy.IdleTimeout == 0, DefaultIdleTimeout.String()},
		{"backends.modern.idle_timeout", c.Backends.Modern.IdleTimeout == 0, DefaultIdleTimeout.String()},
		{"backends.legacy.max_connection_age", c.Backends.Legacy.MaxConnectionAge == 0, DefaultMaxConnectionAge.String()},
		{"backends.modern.max_connection_age", c.Backends.Modern.MaxConnectionAge == 0, DefaultMaxConnectionAge.String()},
		{"body_timeout", c.BodyTimeout == 0, DefaultBodyTimeout.String()},
		{"shutdown.grace", c.Shutdown.Grace == 0, DefaultShutdownGrace.String()},
		{"max_replay_body", c.MaxReplayBody == 0, ByteSize(DefaultMaxReplayBody).String()},
		{"replay_budget", c.ReplayBudget == 0, fmt.Sprintf("%d times max_replay_body", DefaultReplayBudgetShare)},
	}
	if b := c.Backfill; b != nil {
		zs = append(zs, b.zeroDefaults()...)
	}
	for _, z := range zs {
		if _, written := d.Pos[z.path]; written && z.zero && !d.Failed[z.path] {
			d.warnAt(z.path, "is 0, which here means the default, %s, not none or no limit: leave it out, or write the value you mean", z.value)
		}
	}
}

// zeroDefaults are the backfill section's settings that 0 leaves at their
// defaults (applyDefaults).
func (b *Backfill) zeroDefaults() []zeroDefault {
	zs := []zeroDefault{
		{"backfill.batch", b.Batch == 0, strconv.Itoa(DefaultBackfillBatch)},
		{"backfill.concurrency", b.Concurrency == 0, strconv.Itoa(DefaultBackfillConcurrency)},
		{"backfill.batch_timeout", b.BatchTimeout == 0, DefaultBatchTimeout.String()},
	}
	if b.API != nil {
		zs = append(zs, zeroDefault{"backfill.api.timeout", b.API.Timeout == 0, DefaultAPITimeout.String()})
	}
	if w := b.WaitUntil; w != nil {
		zs = append(zs, zeroDefault{"backfill.wait_until.every", w.Every == 0, DefaultWaitEvery.String()},
			zeroDefault{"backfill.wait_until.timeout", w.Timeout == 0, DefaultWaitTimeout.String()})
	}
	for i, t := range b.Tables {
		a := t.TargetAPI
		if a == nil {
			continue
		}
		at := fmt.Sprintf("backfill.tables[%d].target_api.", i)
		zs = append(zs, zeroDefault{at + "concurrency", a.Concurrency == 0, strconv.Itoa(DefaultAPIConcurrency)},
			zeroDefault{at + "retry.max_attempts", a.Retry.MaxAttempts == 0, strconv.Itoa(DefaultRetryAttempts)},
			zeroDefault{at + "retry.backoff", a.Retry.Backoff == 0, DefaultRetryBackoff.String()},
			zeroDefault{at + "retry.max_backoff", a.Retry.MaxBackoff == 0, DefaultRetryMaxBackoff.String()},
			zeroDefault{at + "stop_after_unanswered", a.StopAfterUnanswered == 0, strconv.Itoa(DefaultStopAfterUnanswered)})
	}
	return zs
}

// checker validates a decoded configuration, placing each problem at the
// line of the field it concerns.
type checker struct {
	Decoded
	// dir is the file's folder, which relative paths are relative to.
	dir string
	// warnings are what is valid but unwise, placed like errors.
	warnings Errors
	// unsafe are what turns a protection off, placed like errors
	// (Config.Unsafe).
	unsafe Errors
}

// errorAt reports a problem found after decoding, at the recorded position
// of the field, unless decoding the field or one of its parents failed.
func (d *checker) errorAt(path, format string, args ...any) {
	for p := path; p != ""; p = parentPath(p) {
		if d.Failed[p] {
			return
		}
	}
	// A missing field has no position of its own: point at its parent.
	p, ok := d.Pos[path]
	for parent := path; !ok && parent != ""; {
		parent = parentPath(parent)
		p, ok = d.Pos[parent]
	}
	d.Errs = append(d.Errs, Error{File: d.File, Line: p.Line, Column: p.Column, Field: path, Msg: fmt.Sprintf(format, args...)})
}

// warnAt reports something valid but unwise at the position of the field.
func (d *checker) warnAt(path, format string, args ...any) {
	p := d.Pos[path]
	d.warnings = append(d.warnings, Error{File: d.File, Line: p.Line, Column: p.Column, Field: path, Msg: fmt.Sprintf(format, args...)})
}

// unsafeAt reports, at the position of the field, what turns a
// protection off: config check refuses it, the facade's start warns.
func (d *checker) unsafeAt(path, format string, args ...any) {
	p := d.Pos[path]
	d.unsafe = append(d.unsafe, Error{File: d.File, Line: p.Line, Column: p.Column, Field: path, Msg: fmt.Sprintf(format, args...)})
}

// parentPath is the path of the field containing path: routes[2] for
// routes[2].mode, routes for routes[2].
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}
