package golog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// TestALineKeepsNetHTTPsWordsNotWhatTheyQuote: each line is one JSON log
// line at the level asked for, msg "net/http", its message cut before
// the first quote; a line without a quote is kept whole.
func TestALineKeepsNetHTTPsWordsNotWhatTheyQuote(t *testing.T) {
	for _, c := range []struct{ printed, message string }{
		{`httputil: ReverseProxy read error during body copy: malformed MIME header: missing colon: "Zelda Quimbyfrost MRN7730019"`,
			"httputil: ReverseProxy read error during body copy: malformed MIME header: missing colon:"},
		{"http: TLS handshake error from 127.0.0.1:5000: EOF", "http: TLS handshake error from 127.0.0.1:5000: EOF"},
	} {
		var out bytes.Buffer
		log := slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
		Logger(log, slog.LevelDebug).Print(c.printed)
		var line struct {
			Level, Msg, Message string
			Dropped             bool `json:"quoted_bytes_dropped"`
		}
		if err := json.Unmarshal(out.Bytes(), &line); err != nil {
			t.Fatalf("the log got %q, want one JSON line: %v", out.String(), err)
		}
		quoted := strings.Contains(c.printed, `"`)
		if line.Level != "DEBUG" || line.Msg != "net/http" || line.Message != c.message || line.Dropped != quoted {
			t.Errorf("the log got %+v, want DEBUG net/http %q, quoted_bytes_dropped %v", line, c.message, quoted)
		}
		if strings.Contains(out.String(), "Quimbyfrost") {
			t.Errorf("the log got %q: it holds what was quoted", out.String())
		}
	}
}

// TestAHandlersPanicIsAnErrorWithoutItsValue: a panic in a handler, which
// Go's server recovers and prints, is one ERROR "panic" line an operator
// sees at the default level, with the stack's functions and lines; the
// panic's value only when it is the runtime's own words, since any other
// value was built by code that may have put the request's data in it.
func TestAHandlersPanicIsAnErrorWithoutItsValue(t *testing.T) {
	for _, c := range []struct {
		name  string
		panic func(r *http.Request)
		value string
	}{
		{"the runtime's error", func(r *http.Request) {
			ids := []string{r.URL.Path}
			_ = ids[len(r.URL.Path)]
		}, "runtime error: index out of range [20] with length 1"},
		{"a value the code made", func(r *http.Request) {
			panic(fmt.Sprintf("no record for %s", r.URL.Path))
		}, "a panic value other than the runtime's (not logged: it may hold a request's data)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out testkit.Logs
			log := out.Logger(slog.LevelInfo) // what an operator runs at
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c.panic(r)
			}))
			srv.Config.ErrorLog = Logger(log, slog.LevelDebug)
			srv.Start()
			defer srv.Close()
			if resp, err := http.Get(srv.URL + "/patients/MRN7730019"); err == nil {
				resp.Body.Close()
				t.Fatalf("the panicking handler answered %d", resp.StatusCode)
			}
			var line struct {
				Level, Msg, Error string
				Stack             []string
			}
			testkit.Eventually(t, 5*time.Second, "a log line for the panic", func() bool { return out.String() != "" })
			if err := json.Unmarshal([]byte(out.String()), &line); err != nil {
				t.Fatalf("the log got %q, want one JSON line: %v", out.String(), err)
			}
			if line.Level != "ERROR" || line.Msg != "panic" || line.Error != c.value {
				t.Errorf("the log got %s %q error %q, want ERROR \"panic\" error %q", line.Level, line.Msg, line.Error, c.value)
			}
			if !slices.ContainsFunc(line.Stack, func(f string) bool {
				return strings.Contains(f, "TestAHandlersPanicIsAnErrorWithoutItsValue") && strings.Contains(f, "golog_test.go:")
			}) {
				t.Errorf("stack %q, want the handler's frame with its file and line", line.Stack)
			}
			if strings.Contains(out.String(), "MRN7730019") || strings.Contains(out.String(), "0x") {
				t.Errorf("the log got %q: it holds the request's data or the arguments' values", out.String())
			}
		})
	}
}

// TestAHandlersMisuseIsAWarning: net/http's reports of a bug in the
// facade's own handlers are WARN lines, not DEBUG ones nobody sees.
func TestAHandlersMisuseIsAWarning(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&out, nil))
	Logger(log, slog.LevelDebug).Print("http: superfluous response.WriteHeader call from strangler/router.(*Table).serve (serve.go:120)")
	Logger(log, slog.LevelDebug).Print("http: TLS handshake error from 127.0.0.1:5000: EOF")
	if lines := strings.Split(strings.TrimSpace(out.String()), "\n"); len(lines) != 1 || !strings.Contains(lines[0], `"level":"WARN"`) || !strings.Contains(lines[0], "superfluous") {
		t.Errorf("the log at INFO got %q, want the superfluous WriteHeader line alone, at WARN", out.String())
	}
}
