package golog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

// TestALineKeepsNetHTTPsWordsNotWhatTheyQuote: each line is one JSON log
// line at the level asked for, msg "net/http", its message cut before
// the first quote; a line without a quote is kept whole.
func TestALineKeepsNetHTTPsWordsNotWhatTheyQuote(t *testing.T) {
	for _, c := range []struct{ printed, message string }{
		{`httputil: ReverseProxy read error during body copy: malformed MIME header: missing colon: "Zelda Quimbyfrost MRN7730019"`,
			"httputil: ReverseProxy read error during body copy: malformed MIME header: missing colon:"},
		{"http: superfluous response.WriteHeader call from x (y.go:1)", "http: superfluous response.WriteHeader call from x (y.go:1)"},
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
