package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAWriteTooLargeForTheStoresRoomLeavesTheStoreUp: with 6 MiB free
// on the embedded store's disk, more than its headroom, a dual write of
// 9 MiB (and one under an Idempotency-Key) is refused for its own size:
// a 503 whose JSON error says so with the sizes, and Retry-After. The
// store still takes writes of ordinary size, and says so: /readyz is
// ready and not degraded, strangler_store_up stays 1, no store write
// error is counted, the refusals count as store_room, and a small write
// right after is taken. Before, each such refusal counted as the store
// refusing writes: store_up 0 and /readyz degraded for seconds, so a
// client sending them in a loop kept the store reported down.
func TestAWriteTooLargeForTheStoresRoomLeavesTheStoreUp(t *testing.T) {
	f, legacy, _, _ := facadeWithLittleRoom(t)

	var refused []string // request ids
	large := `{"p":"` + strings.Repeat("x", 9<<20) + `"}`
	for _, key := range []string{"", "roomrefusal1-keyed"} {
		req, err := http.NewRequest("PUT", "http://"+f.public+"/items/large", strings.NewReader(large))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := e2eClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var answer struct {
			Error     string `json:"error"`
			RequestID string `json:"request_id"`
		}
		json.Unmarshal(b, &answer)
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(answer.Error, "too large for the space the state store has left") ||
			!strings.Contains(answer.Error, "KiB needed") || strings.Contains(answer.Error, "retry later") {
			t.Errorf("a 9 MiB write (key %q) with 6 MiB free: got %d %.200s, want 503 saying the body is too large for the store's room, with the sizes", key, resp.StatusCode, b)
		}
		refused = append(refused, answer.RequestID)
		if resp.Header.Get("Retry-After") == "" {
			t.Errorf("a 9 MiB write (key %q) refused for its size: no Retry-After", key)
		}
	}
	if onLegacy, _ := legacy.snapshot(); onLegacy["large"] != "" {
		t.Errorf("the primary got the write refused with 503")
	}

	// Read before any write is taken, so that only a probe (every 5 s)
	// could have cleared what the refusals did to them.
	if code, ready := getBody(t, "http://"+f.admin+"/readyz"); code != http.StatusOK || ready != "ready\n" {
		t.Errorf("/readyz after the writes refused for their size: got %d %q, want 200 ready, not degraded", code, ready)
	}
	for sample, want := range map[string]string{
		"strangler_store_up":                                            "1",
		"strangler_store_write_errors_total":                            "0",
		`strangler_refused_total{reason="store_room",route="put-item"}`: "2",
	} {
		if got := metricValue(t, f.admin, sample); got != want {
			t.Errorf("%s after the writes refused for their size: got %q, want %s", sample, got, want)
		}
	}
	if code, answer, err := sendRequest("PUT", "http://"+f.public+"/items/large", `{"small":1}`, nil); code != http.StatusOK {
		t.Errorf("a small write right after: got %d %s %v, want 200", code, answer, err)
	}
	// Logged once each, with the route and the sizes (the log is
	// written out asynchronously).
	for _, id := range refused {
		line := f.logs.waitFor(t, roomRefusedLog, map[string]any{"request_id": id, "route": "put-item"}, 10*time.Second)
		if line["body_bytes"] != float64(len(large)) || line["need_kib"] == nil || line["free_kib"] == nil {
			t.Errorf("the log of a write refused for its size: got %v, want its body's size, what it needs and what is free", line)
		}
	}
	if n := strings.Count(f.logs.String(), roomRefusedLog); n != len(refused) {
		t.Errorf("%d writes refused for their size logged %d times, want once each", len(refused), n)
	}
}

// roomRefusedLog is the message of a dual write refused for its size.
const roomRefusedLog = "dual write refused: its body is too large for the state store's room"
