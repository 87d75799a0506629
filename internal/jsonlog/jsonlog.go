// Package jsonlog is the facade's JSON log handler: log/slog's own JSON
// handler, with a shorter way to the same bytes for the common line. A
// fallback storm logs one line a request, and slog's handler spends more
// on it (about 13,000 instructions: it resolves, escapes and encodes each
// value through general machinery) than the facade spends on the rest of
// the fallback beyond its second round trip.
package jsonlog

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
)

// NewHandler returns a handler writing the lines slog.NewJSONHandler(w,
// &slog.HandlerOptions{Level: level}) writes, byte for byte: time, level
// and msg first, then the record's attributes in their order. A record
// whose message, keys and values are plain (strings of printable ASCII
// without quote or backslash; integers; finite floats that JSON writes
// without an exponent; booleans; durations) it writes itself, each line in
// one Write call; any other record, and every record of a handler derived
// with WithAttrs or WithGroup, goes to slog's handler.
func NewHandler(w io.Writer, level slog.Leveler) slog.Handler {
	lw := &lockedWriter{w: w}
	return &handler{w: lw, json: slog.NewJSONHandler(lw, &slog.HandlerOptions{Level: level})}
}

type handler struct {
	w    *lockedWriter
	json *slog.JSONHandler
}

// lockedWriter serialises the lines of both ways to w, as slog's handler
// does its own.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.json.Enabled(ctx, l) }

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler { return h.json.WithAttrs(as) }

func (h *handler) WithGroup(name string) slog.Handler { return h.json.WithGroup(name) }

// lines are the buffers lines are put together in.
var lines = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	bp := lines.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= 16<<10 {
			*bp = (*bp)[:0]
			lines.Put(bp)
		}
	}()
	b, ok := appendLine((*bp)[:0], r)
	*bp = b
	if !ok {
		return h.json.Handle(ctx, r)
	}
	_, err := h.w.Write(b)
	return err
}

// appendLine appends r's line to b, as slog's JSON handler writes it;
// false if r is not plain (see NewHandler).
func appendLine(b []byte, r slog.Record) ([]byte, bool) {
	b = append(b, '{')
	if !r.Time.IsZero() {
		t := r.Time.Round(0)
		if y := t.Year(); y < 0 || y >= 10000 {
			return b, false
		}
		b = append(b, `"time":"`...)
		b = t.AppendFormat(b, time.RFC3339Nano)
		b = append(b, `",`...)
	}
	b = append(b, `"level":`...)
	b, ok := appendString(b, r.Level.String())
	b = append(b, `,"msg":`...)
	b, ok2 := appendString(b, r.Message)
	ok = ok && ok2
	r.Attrs(func(a slog.Attr) bool {
		b = append(b, ',')
		var ok1, ok2 bool
		b, ok1 = appendString(b, a.Key)
		b = append(b, ':')
		b, ok2 = appendValue(b, a.Value)
		ok = ok && ok1 && ok2
		return ok
	})
	return append(b, "}\n"...), ok
}

// appendValue appends v as slog's JSON handler writes it; false if v is
// not plain.
func appendValue(b []byte, v slog.Value) ([]byte, bool) {
	switch v.Kind() {
	case slog.KindString:
		return appendString(b, v.String())
	case slog.KindInt64:
		return strconv.AppendInt(b, v.Int64(), 10), true
	case slog.KindUint64:
		return strconv.AppendUint(b, v.Uint64(), 10), true
	case slog.KindFloat64:
		// slog writes floats with json.Marshal, which switches to an
		// exponent below 1e-6 and from 1e21 on, and refuses NaN and the
		// infinities: those go to slog.
		f := v.Float64()
		if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) || math.IsNaN(f) {
			return b, false
		}
		return strconv.AppendFloat(b, f, 'f', -1, 64), true
	case slog.KindBool:
		return strconv.AppendBool(b, v.Bool()), true
	case slog.KindDuration:
		return strconv.AppendInt(b, int64(v.Duration()), 10), true
	}
	return b, false
}

// plain marks the bytes slog writes into a JSON string as they are:
// printable ASCII but the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString appends s quoted; false if s is not plain: a byte slog
// escapes or checks as UTF-8.
func appendString(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		if !plain[s[i]] {
			return b, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}
