package jsonlog

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// fallbackRecord is the facade's fallback line, as router writes it.
func fallbackRecord(t time.Time) slog.Record {
	r := slog.NewRecord(t, slog.LevelInfo, "fallback", 0)
	r.AddAttrs(
		slog.String("route", "get-patient"),
		slog.String("method", "GET"),
		slog.String("reason", "not_found"),
		slog.Int("modern_status", 404),
		slog.Int("legacy_status", 200),
		slog.Float64("duration_ms", 0.78),
		slog.String("request_id", "c530bd45-8f0e-4c3b-9a1e-2f9d7e4b6a10"),
		slog.String("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"),
	)
	return r
}

// lineOf returns what each handler writes for r.
func linesOf(t *testing.T, r slog.Record, level slog.Level) (got, want string) {
	t.Helper()
	var g, w bytes.Buffer
	ctx := context.Background()
	if h := NewHandler(&g, level); h.Enabled(ctx, r.Level) {
		if err := h.Handle(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if h := slog.NewJSONHandler(&w, &slog.HandlerOptions{Level: level}); h.Enabled(ctx, r.Level) {
		if err := h.Handle(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	return g.String(), w.String()
}

func TestTheFallbackLineIsWrittenWithoutSlogAndAsSlogWritesIt(t *testing.T) {
	r := fallbackRecord(time.Date(2026, 12, 6, 9, 5, 25, 123456789, time.FixedZone("", 3600)))
	if _, plain := appendLine(nil, r); !plain {
		t.Fatal("the fallback line goes to slog's handler, not the short way")
	}
	got, want := linesOf(t, r, slog.LevelInfo)
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestEveryRecordIsWrittenAsSlogWritesIt(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC)
	type kv = []slog.Attr
	for _, tc := range []struct {
		name  string
		time  time.Time
		level slog.Level
		msg   string
		attrs kv
	}{
		{"no time", time.Time{}, slog.LevelInfo, "m", kv{slog.Int("n", 1)}},
		{"a time with a monotonic reading", time.Now(), slog.LevelInfo, "m", nil},
		{"a year past 9999", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), slog.LevelInfo, "m", nil},
		{"an odd level", at, slog.LevelWarn + 2, "m", nil},
		{"every plain kind", at, slog.LevelError, "plain", kv{
			slog.String("s", "a b-c_d.e/f:g"), slog.Int64("i", math.MinInt64), slog.Uint64("u", math.MaxUint64),
			slog.Bool("t", true), slog.Bool("f", false), slog.Duration("d", 1500*time.Millisecond),
			slog.String("", "empty key"), slog.String("empty", ""), slog.Int("dup", 1), slog.Int("dup", 2),
		}},
		{"floats JSON writes without an exponent", at, slog.LevelInfo, "m", kv{
			slog.Float64("zero", 0), slog.Float64("negative zero", math.Copysign(0, -1)), slog.Float64("small", 1e-6),
			slog.Float64("ms", 0.001), slog.Float64("third", 1.0/3), slog.Float64("big", 1e20), slog.Float64("neg", -12.5),
		}},
		{"a float with an exponent, small", at, slog.LevelInfo, "m", kv{slog.Float64("f", 9.99e-7)}},
		{"a float with an exponent, large", at, slog.LevelInfo, "m", kv{slog.Float64("f", 1e21)}},
		{"NaN", at, slog.LevelInfo, "m", kv{slog.Float64("f", math.NaN())}},
		{"infinity", at, slog.LevelInfo, "m", kv{slog.Float64("f", math.Inf(-1))}},
		{"a quote in the message", at, slog.LevelInfo, `say "hi"`, nil},
		{"a backslash in a key", at, slog.LevelInfo, "m", kv{slog.String(`a\b`, "v")}},
		{"a control byte in a value", at, slog.LevelInfo, "m", kv{slog.String("k", "a\tb\x00\x7f")}},
		{"HTML characters, which slog does not escape", at, slog.LevelInfo, "m", kv{slog.String("k", "<a href='x'>&amp;</a>")}},
		{"non-ASCII and invalid UTF-8", at, slog.LevelInfo, "m", kv{slog.String("k", "blåbær \u2028 \xff")}},
		{"a time value", at, slog.LevelInfo, "m", kv{slog.Time("at", at)}},
		{"an error", at, slog.LevelInfo, "m", kv{slog.Any("err", errors.New(`no "such" thing`))}},
		{"a group", at, slog.LevelInfo, "m", kv{slog.Group("g", slog.Int("a", 1), slog.String("b", "x"))}},
		{"an empty group", at, slog.LevelInfo, "m", kv{slog.Group("g")}},
		{"an empty attribute", at, slog.LevelInfo, "m", kv{{}, slog.Int("after", 1)}},
		{"a value resolved from a LogValuer", at, slog.LevelInfo, "m", kv{slog.Any("v", valuer{})}},
		{"a map", at, slog.LevelInfo, "m", kv{slog.Any("m", map[string]int{"a": 1})}},
		{"plain, then not", at, slog.LevelInfo, "m", kv{slog.Int("a", 1), slog.String("b", `"`), slog.Int("c", 3)}},
		{"below the level", at, slog.LevelDebug, "m", kv{slog.Int("a", 1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := slog.NewRecord(tc.time, tc.level, tc.msg, 0)
			r.AddAttrs(tc.attrs...)
			got, want := linesOf(t, r, slog.LevelInfo)
			if got != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

type valuer struct{}

func (valuer) LogValue() slog.Value { return slog.IntValue(7) }

func TestDerivedHandlersWriteAsSlogDoes(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var g, w bytes.Buffer
	got := slog.New(NewHandler(&g, slog.LevelInfo)).With("component", "router").WithGroup("req")
	want := slog.New(slog.NewJSONHandler(&w, nil)).With("component", "router").WithGroup("req")
	for _, l := range []*slog.Logger{got, want} {
		r := slog.NewRecord(at, slog.LevelInfo, "m", 0)
		r.AddAttrs(slog.Int("n", 1))
		if err := l.Handler().Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if g.String() != w.String() {
		t.Errorf("got  %s\nwant %s", g.String(), w.String())
	}
}

func TestLinesOfBothWaysAreNeverInterleaved(t *testing.T) {
	var buf bytes.Buffer
	h := NewHandler(&buf, slog.LevelInfo)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var wg sync.WaitGroup
	const each = 200
	for _, msg := range []string{"plain", `not "plain"`} {
		for range 4 {
			wg.Go(func() {
				for range each {
					r := slog.NewRecord(at, slog.LevelInfo, msg, 0)
					r.AddAttrs(slog.String("k", strings.Repeat("v", 100)))
					h.Handle(context.Background(), r)
				}
			})
		}
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 8*each {
		t.Fatalf("%d lines, want %d", len(lines), 8*each)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, `{"time":`) || !strings.HasSuffix(l, `"}`) {
			t.Fatalf("a mangled line: %s", l)
		}
	}
}

func FuzzStringsAreWrittenAsSlogWritesThem(f *testing.F) {
	for _, s := range []string{"", "plain", `q"`, `b\`, "\x00", "\u2028", "\xff", "é", "<>&", "\x7f", "\x1f"} {
		f.Add(s, s)
	}
	f.Fuzz(func(t *testing.T, key, value string) {
		r := slog.NewRecord(time.Unix(1, 2), slog.LevelInfo, value, 0)
		r.AddAttrs(slog.String(key, value))
		got, want := linesOf(t, r, slog.LevelInfo)
		if got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	})
}

// BenchmarkFallbackLine is the fallback line, through this handler and
// through slog's.
func BenchmarkFallbackLine(b *testing.B) {
	for _, bc := range []struct {
		name string
		h    slog.Handler
	}{
		{"jsonlog", NewHandler(io.Discard, slog.LevelInfo)},
		{"slog", slog.NewJSONHandler(io.Discard, nil)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				bc.h.Handle(ctx, fallbackRecord(time.Now()))
			}
		})
	}
}
