package main

import (
	"bytes"
	"encoding/json"
	stdlog "log"
	"os"
	"strings"
	"testing"
)

// TestTheStandardLogKeepsNoBackendBytes: net/http's transport prints an
// answer a backend sent on an idle connection with the log package,
// quoting its first bytes (perhaps a patient's record). The facade's
// logger takes such lines into its JSON log, without what they quote.
func TestTheStandardLogKeepsNoBackendBytes(t *testing.T) {
	var out bytes.Buffer
	if _, err := newLogger(&out, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdlog.SetOutput(os.Stderr)
		stdlog.SetFlags(stdlog.LstdFlags)
	})
	// As net/http's transport.go prints it.
	stdlog.Printf("Unsolicited response received on idle HTTP channel starting with %q; err=%v",
		"HTTP/1.1 200 OK\r\n\r\n{\"name\":\"Ada Lovelace\"}", nil)
	var line struct{ Level, Msg, Message string }
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatalf("the log got %q, want one JSON line: %v", out.String(), err)
	}
	if strings.Contains(out.String(), "Lovelace") {
		t.Errorf("the log got %q: it holds the backend's bytes", out.String())
	}
	if line.Level != "WARN" || line.Msg != "net/http" || line.Message != "Unsolicited response received on idle HTTP channel starting with" {
		t.Errorf("the log got %+v", line)
	}
}
