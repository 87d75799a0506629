package router

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestABackendsUnreadableBytesAreNotLoggedEvenAtDebug: a backend whose
// chunked answer ends in a malformed trailer line makes ReverseProxy log
// the copy error, which quotes the line (perhaps a patient's record);
// the facade's debug log keeps net/http's words without it.
func TestABackendsUnreadableBytesAreNotLoggedEvenAtDebug(t *testing.T) {
	const canary = "Zelda Quimbyfrost MRN7730019"
	legacy := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		conn, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		rw.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n{\"id\":1}\r\n0\r\n" + canary + "\r\n\r\n")
		rw.Flush()
	})
	logs := &syncBuffer{}
	f := serveConfig(t, testConfig(t, legacy.URL, deadURL(t), "", `  - {name: p, match: "GET /p/{id}", mode: legacy}`), func(d *Deps) {
		d.Log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	resp, err := f.Client().Get(f.URL + "/p/1")
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "ReverseProxy read error during body copy") {
		if time.Now().After(deadline) {
			t.Fatalf("no net/http line about the malformed trailer in the log:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if strings.Contains(logs.String(), "Quimbyfrost") {
		t.Errorf("the debug log holds the backend's malformed trailer:\n%s", logs.String())
	}
}
