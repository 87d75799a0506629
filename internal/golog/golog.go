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
	"path"
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
//
// Two kinds of line are never at level, since an operator must see them:
// a handler's panic, which the server recovers and prints with its stack
// (an ERROR "panic" line, see [panicLine]), and the server's reports of
// its own handler's misuse or of a failing listener (WARN).
func Writer(log *slog.Logger, level slog.Level) io.Writer {
	return writer{log, level}
}

type writer struct {
	log   *slog.Logger
	level slog.Level
}

// warnings are the starts of net/http's lines that report a bug in a
// handler or a listener that cannot accept, not a client's or a backend's
// misbehaviour.
var warnings = []string{
	"http: Accept error",
	"http: superfluous response.WriteHeader",
	"http: response.WriteHeader on hijacked",
	"http: response.Write on hijacked",
	"http: WriteHeader called with both",
	"http: invalid Content-Length",
}

func (w writer) Write(p []byte) (int, error) {
	line := string(p)
	if value, stack, ok := panicLine(line); ok {
		w.log.Error("panic", "error", value, "stack", stack)
		return len(p), nil
	}
	level := w.level
	for _, start := range warnings {
		if strings.HasPrefix(line, start) {
			level = max(level, slog.LevelWarn)
		}
	}
	msg, quoted := strings.TrimSpace(line), false
	if i := strings.IndexByte(msg, '"'); i >= 0 {
		msg, quoted = strings.TrimSpace(msg[:i]), true
	}
	w.log.Log(context.Background(), level, "net/http", "message", msg, "quoted_bytes_dropped", quoted)
	return len(p), nil
}

// panicLine reads the line an HTTP/1 or HTTP/2 server prints for a
// handler's panic ("http: panic serving ADDR: VALUE\nSTACK"). The value is
// kept only when it is the runtime's own words ("runtime error: index out
// of range [3] with length 3"): any other value was made by code that may
// have put a request's data in it. The stack is kept as its frames'
// functions and file:line, without the arguments' values.
func panicLine(line string) (value string, stack []string, ok bool) {
	head, trace, _ := strings.Cut(line, "\n")
	_, rest, found := strings.Cut(head, "panic serving ")
	if !found || !strings.HasPrefix(head, "http") {
		return "", nil, false
	}
	value = "a panic value other than the runtime's (not logged: it may hold a request's data)"
	if _, v, found := strings.Cut(rest, ": runtime error: "); found && !strings.ContainsAny(v, `"'`) {
		value = "runtime error: " + v
	}
	var fn string
	for _, l := range strings.Split(trace, "\n") {
		switch {
		case strings.HasPrefix(l, "\t") && fn != "":
			at, _, _ := strings.Cut(strings.TrimSpace(l), " +0x")
			stack = append(stack, fn+" ("+path.Base(at)+")")
			fn = ""
		case l != "" && !strings.HasPrefix(l, "\t") && !strings.HasPrefix(l, "goroutine "):
			fn = l
			if i := strings.LastIndexByte(l, '('); i > 0 && strings.HasSuffix(l, ")") {
				fn = l[:i] // the arguments' values
			}
		}
	}
	return value, stack, true
}
