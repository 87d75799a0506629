// Package golog takes what Go's own libraries print (net/http's servers
// and its transport) into the JSON log, without the
// bytes they quote: those are a client's or a backend's, and may be a
// patient's record.
package golog

import (
	"context"
	"io"
	stdlog "log"
	"log/slog"
	"strings"
)

// Logger returns a logger for an http.Server's ErrorLog that writes as
// Writer does.
func Logger(log *slog.Logger, level slog.Level) *stdlog.Logger {
	return stdlog.New(Writer(log, level), "", 0)
}

// Writer returns a destination for the log package (SetOutput) that
// writes each line to log at level as msg "net/http", its message cut at
// the first quote: net/http quotes with %q what it could not read (a
// malformed trailer line, an answer on an idle connection), after its own
// words.
func Writer(log *slog.Logger, level slog.Level) io.Writer {
	return writer{log, level}
}

type writer struct {
	log   *slog.Logger
	level slog.Level
}

func (w writer) Write(p []byte) (int, error) {
	msg, quoted := strings.TrimSpace(string(p)), false
	if i := strings.IndexByte(msg, '"'); i >= 0 {
		msg, quoted = strings.TrimSpace(msg[:i]), true
	}
	w.log.Log(context.Background(), w.level, "net/http", "message", msg, "quoted_bytes_dropped", quoted)
	return len(p), nil
}
