package main

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config"
	"strangler/config/configfile"
	"strangler/internal/filecap"
	"strangler/metrics"
)

// reloader re-reads the configuration on SIGHUP and whenever one of its
// files changes, and applies it only once its files have stayed the same
// for settleLooks looks and only if it is valid as a whole; otherwise the
// previous configuration keeps serving.
type reloader struct {
	path string
	env  configfile.Env
	log  *slog.Logger

	// apply serves a loaded configuration, or says why it cannot.
	apply   func(*config.Config) error
	current *atomic.Pointer[config.Config]
	success prometheus.Gauge
	lastOK  prometheus.Gauge
	// hup receives SIGHUP from the moment the reloader is prepared, before
	// the facade reports ready: a SIGHUP arriving earlier would kill it.
	hup chan os.Signal
}

// pollInterval is how often configuration files are checked for changes.
// Polling, unlike inotify, sees Kubernetes ConfigMap updates (a symlink
// swap in the parent folder) and edits through any editor.
const pollInterval = time.Second

// settleLooks is how many looks after the one that found a change must
// find the files as it did before the change is applied: 2 s at
// pollInterval. A file rewritten in place (a shell's >, a copy, an
// upload) is read half written by a look between two of its writes, and
// a first half is often valid YAML on its own (the first routes of the
// list): applied, it would route by a file nobody wrote. A writer that
// pauses for longer than this between two writes is still read half
// way: the README says to replace the file whole.
const settleLooks = 2

// keepsChangingLooks is how long, in looks, a change may keep the files
// changing before the wait is logged (once).
const keepsChangingLooks = 30

// prepare registers the reloader's metrics and starts catching SIGHUP.
func (r *reloader) prepare(reg prometheus.Registerer) {
	r.hup = make(chan os.Signal, 1)
	signal.Notify(r.hup, syscall.SIGHUP)
	r.success = metrics.ConfigReloadSuccessful.Gauge()
	r.lastOK = metrics.ConfigReloadTimestamp.Gauge()
	reg.MustRegister(r.success, r.lastOK)
	r.success.Set(1)
	r.lastOK.SetToCurrentTime()
}

// pending is a change waiting for the files to settle.
type pending struct {
	cause string
	// fp is what the files held at the last look; same counts the looks
	// in a row that found it, waited all the looks since the change.
	fp           [sha256.Size]byte
	same, waited int
	// hups counts the SIGHUPs the change waited through, the one that
	// began it included.
	hups int
}

// watch is what the reloader knows of the files between two looks.
type watch struct {
	// seen is what the files held when the configuration in force was
	// read, or when a change was last refused: a refused change is not
	// tried again until the files change again.
	seen [sha256.Size]byte
	p    *pending
}

func (r *reloader) run(ctx context.Context) error {
	defer signal.Stop(r.hup)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	w := r.watch()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.hup:
			r.look(&w, true)
		case <-tick.C:
			r.look(&w, false)
		}
	}
}

// watch starts watching the files of the configuration in force.
func (r *reloader) watch() watch {
	return watch{seen: fingerprint(r.current.Load().Sources)}
}

// look looks at the files once, on a SIGHUP when hup, and applies a
// change once they have settled.
func (r *reloader) look(w *watch, hup bool) {
	sources := r.current.Load().Sources
	fp := fingerprint(sources)
	switch {
	case hup:
		// Read now, applied once the files are seen the same on the
		// next looks: a SIGHUP sent during a write waits for it. A
		// SIGHUP during the wait joins it and begins it anew only if
		// the files changed: before, each began it anew, so SIGHUPs
		// sent more often than every 2 s applied nothing, and said
		// nothing of it.
		if w.p == nil {
			w.p = &pending{fp: fp}
		} else if fp != w.p.fp {
			w.p.fp, w.p.same = fp, 0
		}
		w.p.cause = "SIGHUP"
		w.p.hups++
		return
	case w.p == nil && fp == w.seen:
		return
	case w.p == nil:
		w.p = &pending{cause: "file change", fp: fp}
		return
	case w.p.cause != "SIGHUP" && fp == w.seen:
		w.p = nil // changed back to what serves
		return
	}
	p := w.p
	if p.waited++; p.waited == keepsChangingLooks {
		r.log.Warn("the configuration files keep changing; the change is applied once they stay the same for a while",
			"cause", p.cause, "settle_seconds", settleLooks*pollInterval.Seconds())
	}
	if fp != p.fp {
		p.fp, p.same = fp, 0
		return
	}
	if p.same++; p.same < settleLooks {
		return
	}
	applied, changed := r.reload(p.cause, p.hups, sources, fp)
	switch {
	case changed:
		// Written to while it was loaded: wait for it again.
		p.same = 0
		return
	case applied && !slices.Equal(sources, r.current.Load().Sources):
		w.seen = fingerprint(r.current.Load().Sources)
	default:
		w.seen = fp
	}
	w.p = nil
}

// reload applies the configuration file if it is valid and its files,
// sources, still hold what they held at the looks before (fp), and
// reports whether it did, or whether they had changed; hups is how many
// SIGHUPs asked for it, logged when more than one.
func (r *reloader) reload(cause string, hups int, sources []string, fp [sha256.Size]byte) (applied, changed bool) {
	var signals []any
	if hups > 1 {
		signals = []any{"sighups", hups}
	}
	// What the load itself read is compared, not the files after it: a
	// writer rewriting a file in place with what it held (a configuration
	// agent on its round) leaves it as it was before and after the load,
	// and the load read it half written in between.
	read := map[string][]byte{}
	env := r.env
	env.ReadFile = func(path string, limit int64) ([]byte, error) {
		b, err := r.env.ReadFile(path, limit)
		if err == nil {
			read[path] = b
		}
		return b, err
	}
	cfg, err := configfile.Load(r.path, env)
	if fingerprintRead(sources, read) != fp {
		return false, true
	}
	if err == nil {
		err = r.apply(cfg)
	}
	if err != nil {
		r.success.Set(0)
		r.log.Error("config reload refused; the previous configuration keeps serving",
			append([]any{"cause", cause, "error", strings.ReplaceAll(err.Error(), "\n", "; ")}, signals...)...)
		return false, false
	}
	old := r.current.Swap(cfg)
	r.success.Set(1)
	r.lastOK.SetToCurrentTime()
	r.log.Info("config reloaded", append([]any{"cause", cause, "routes", len(cfg.Routes)}, signals...)...)
	logWarnings(r.log, cfg)
	if changed := restartOnly(old, cfg); len(changed) > 0 {
		r.log.Warn("these settings changed, and take effect on restart: until then the facade keeps the old ones",
			"settings", strings.Join(changed, ", "))
	}
	return true, false
}

// restartOnly names the settings that differ between old and cfg and
// that the running facade does not take from a reload: its listeners,
// their certificates' files (a renewed certificate in the same files is
// served without one), the store, its encryption keys, the state
// snapshot's file and the repair workers are set up once, at the start.
func restartOnly(old, cfg *config.Config) []string {
	var names []string
	for _, s := range []struct {
		name    string
		changed bool
	}{
		{"listen", old.Listen != cfg.Listen},
		{"tls", !sameTLS(old.TLS, cfg.TLS)},
		{"max_connections", old.MaxConnections != cfg.MaxConnections},
		{"admin.listen", old.Admin.Listen != cfg.Admin.Listen},
		{"admin.tls", !sameTLS(old.Admin.TLS, cfg.Admin.TLS)},
		{"store", old.Store != cfg.Store},
		{"store_encryption", !slices.Equal(old.EncryptionKeys(), cfg.EncryptionKeys())},
		{"state_snapshot", old.StateSnapshot != cfg.StateSnapshot},
		{"repairs.workers", old.Repairs.Workers != cfg.Repairs.Workers},
	} {
		if s.changed {
			names = append(names, s.name)
		}
	}
	return names
}

// sameTLS reports whether two listeners' TLS sections name the same files,
// or are both absent.
func sameTLS(a, b *config.TLS) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// fingerprint summarises the contents of files, so any edit is noticed.
func fingerprint(paths []string) [sha256.Size]byte { return fingerprintRead(paths, nil) }

// fingerprintRead is fingerprint of the files as read holds them, and of
// those it does not hold as they are now (for one that cannot be read,
// why).
func fingerprintRead(paths []string, read map[string][]byte) [sha256.Size]byte {
	h := sha256.New()
	for _, p := range paths {
		b, ok := read[p]
		var err error
		if !ok {
			b, err = filecap.Read(p, filecap.Limit)
		}
		if err != nil {
			// Why, not only that: a file removed and then made a
			// folder is a change, and its refusal says so anew.
			h.Write([]byte("unreadable:" + p + ": " + err.Error()))
			continue
		}
		h.Write(b)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
