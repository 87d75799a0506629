package main

import (
	"log/slog"
	"syscall"

	"strangler/config"
	"strangler/edge"
)

// maxConnections is the public listener's cap on client connections:
// max_connections, or edge.DefaultMaxConnections of the open-file limit.
// It warns when a cap set in the file leaves less than half that limit
// to the backends, the store and the admin listener.
func maxConnections(cfg *config.Config, log *slog.Logger) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		// Not seen on Linux; without the limit, assume the usual 1024.
		log.Warn("reading the open-file limit failed; max_connections defaults as for 1024", "error", err)
		lim.Cur = 1024
	}
	half := edge.DefaultMaxConnections(lim.Cur)
	if cfg.MaxConnections == 0 {
		return half
	}
	if cfg.MaxConnections > half {
		log.Warn("max_connections leaves less than half the open-file limit to the backends, the store and the admin listener: a flood of clients can leave the facade unable to reach them; raise the limit (ulimit -n, LimitNOFILE) or lower max_connections",
			"max_connections", cfg.MaxConnections, "open_file_limit", lim.Cur)
	}
	return cfg.MaxConnections
}
