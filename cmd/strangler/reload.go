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
// files changes, and applies it only if it is valid as a whole; otherwise
// the previous configuration keeps serving.
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

func (r *reloader) run(ctx context.Context) error {
	defer signal.Stop(r.hup)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	seen := fingerprint(r.current.Load().Sources)
	for {
		var cause string
		select {
		case <-ctx.Done():
			return nil
		case <-r.hup:
			cause = "SIGHUP"
		case <-tick.C:
			cause = "file change"
		}
		// Taken before loading, so an edit landing during the load is seen
		// on the next tick. A refused change is not retried until the
		// files change again.
		sources := r.current.Load().Sources
		fp := fingerprint(sources)
		if fp == seen && cause != "SIGHUP" {
			continue
		}
		seen = fp
		if r.reload(cause) && !slices.Equal(sources, r.current.Load().Sources) {
			seen = fingerprint(r.current.Load().Sources)
		}
	}
}

// reload applies the configuration file if it is valid, and reports
// whether it did.
func (r *reloader) reload(cause string) bool {
	cfg, err := configfile.Load(r.path, r.env)
	if err == nil {
		err = r.apply(cfg)
	}
	if err != nil {
		r.success.Set(0)
		r.log.Error("config reload refused; the previous configuration keeps serving",
			"cause", cause, "error", strings.ReplaceAll(err.Error(), "\n", "; "))
		return false
	}
	old := r.current.Swap(cfg)
	r.success.Set(1)
	r.lastOK.SetToCurrentTime()
	r.log.Info("config reloaded", "cause", cause, "routes", len(cfg.Routes))
	if old.Listen != cfg.Listen || old.Admin.Listen != cfg.Admin.Listen || old.Store != cfg.Store || old.Repairs.Workers != cfg.Repairs.Workers {
		r.log.Warn("listen addresses, the store and repairs.workers take effect on restart")
	}
	return true
}

// fingerprint summarises the contents of files, so any edit is noticed.
func fingerprint(paths []string) [sha256.Size]byte {
	h := sha256.New()
	for _, p := range paths {
		b, err := filecap.Read(p, filecap.Limit)
		if err != nil {
			h.Write([]byte("missing:" + p))
			continue
		}
		h.Write(b)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}
