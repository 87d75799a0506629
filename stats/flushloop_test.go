package stats

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRunFlushesFlushesOnceMoreWhenStopped(t *testing.T) {
	c := NewCounters()
	c.Route("get").Request(time.Now(), "legacy", &http.Request{Header: http.Header{}})
	up := &sink{}
	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		// An interval no test waits for: only the stop makes it flush.
		done <- RunFlushes(ctx, time.Hour, slog.New(slog.NewTextHandler(&logs, nil)), c.Flusher(up),
			Flusher{What: "learned schemas", Flush: func(context.Context) error { return errors.New("store down") }})
	}()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(up.counts) != 1 || up.counts[0].Requests != 1 {
		t.Errorf("after the stop the store holds %+v, want the one request", up.counts)
	}
	if !strings.Contains(logs.String(), "flushing learned schemas to the state store failed") {
		t.Errorf("a failed flush was not logged by name; logs:\n%s", logs.String())
	}
}
