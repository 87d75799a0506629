package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestServeEndToEnd(t *testing.T) {
	legacy := backendAnswering(t, "legacy")
	modern := backendAnswering(t, "modern")
	cfg := writeConfig(t, "", legacy.URL, modern.URL, `
  - {name: get-patient, match: "GET /patients/{id}", mode: fallback}
`)
	r := startRun(t, "serve", "--config", cfg)

	t.Run("requests are served", func(t *testing.T) {
		if code, body := getBody(t, "http://"+r.public+"/patients/1"); code != 200 || body != "modern" {
			t.Errorf("got %d %q, want modern's answer", code, body)
		}
	})
	t.Run("the admin listener serves health and metrics", func(t *testing.T) {
		if code, _ := getBody(t, "http://"+r.admin+"/healthz"); code != 200 {
			t.Errorf("/healthz = %d", code)
		}
		if v := metricValue(t, r.admin, `strangler_route_mode{mode="fallback",route="get-patient"}`); v != "1" {
			t.Errorf("strangler_route_mode = %q, want 1", v)
		}
		if v := metricValue(t, r.admin, "strangler_config_last_reload_successful"); v != "1" {
			t.Errorf("strangler_config_last_reload_successful = %q, want 1", v)
		}
	})
	t.Run("request smuggling shapes are refused before any backend", func(t *testing.T) {
		got := rawExchange(t, r.public, "POST /patients/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
		if !strings.HasPrefix(got, "HTTP/1.1 400 ") || !strings.Contains(got, `"error"`) {
			t.Errorf("CL+TE got %q, want 400 with a JSON error", got)
		}
		got = rawExchange(t, r.public, "POST /patients/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde")
		if !strings.HasPrefix(got, "HTTP/1.1 400 ") {
			t.Errorf("differing Content-Length got %q, want 400", got)
		}
	})
	t.Run("a request head above 64 KiB is refused", func(t *testing.T) {
		head := func(size int) string {
			const frame = "GET /patients/1 HTTP/1.1\r\nHost: x\r\nX-Big: \r\nConnection: close\r\n\r\n"
			return strings.Replace(frame, "X-Big: ", "X-Big: "+strings.Repeat("a", size-len(frame)), 1)
		}
		if got := rawExchange(t, r.public, head(64<<10+1)); !strings.HasPrefix(got, "HTTP/1.1 431 ") {
			t.Errorf("a 64 KiB + 1 byte head got %.40q, want 431", got)
		}
		if got := rawExchange(t, r.public, head(64<<10)); !strings.HasPrefix(got, "HTTP/1.1 200 ") {
			t.Errorf("a 64 KiB head got %.40q, want it served", got)
		}
	})
}

func TestReload(t *testing.T) {
	legacy := backendAnswering(t, "legacy")
	modern := backendAnswering(t, "modern")
	path := writeConfig(t, "", legacy.URL, modern.URL, `  - {name: p, match: "GET /p", mode: legacy}`)
	r := startRun(t, "serve", "--config", path)
	url := "http://" + r.public + "/p"

	// Requests run throughout; not one may fail while tables swap.
	var failures, served atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := http.Get(url)
				if err != nil || resp.StatusCode != 200 {
					failures.Add(1)
				}
				if resp != nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				served.Add(1)
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()

	mode := "legacy"
	for i := range 4 {
		mode = map[string]string{"legacy": "modern", "modern": "legacy"}[mode]
		writeConfig(t, path, legacy.URL, modern.URL, `  - {name: p, match: "GET /p", mode: `+mode+`}`)
		r.logs.waitFor(t, "config reloaded", nil, 5*time.Second)
		deadline := time.Now().Add(3 * time.Second)
		for {
			if _, body := getBody(t, url); body == mode {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("reload %d: still not served by %s", i, mode)
			}
			time.Sleep(20 * time.Millisecond)
		}
		// The log check above matches the first reload line; clear the way
		// for the next one.
		r.logs.mu.Lock()
		r.logs.buf.Reset()
		r.logs.mu.Unlock()
	}

	t.Run("an invalid file is refused and the old config keeps serving", func(t *testing.T) {
		os.WriteFile(path, []byte("routes:\n  - {name: p, match: \"GET /p\", mode: shadw}\n"), 0o644)
		line := r.logs.waitFor(t, "config reload refused; the previous configuration keeps serving", nil, 5*time.Second)
		if msg, _ := line["error"].(string); !strings.Contains(msg, `:2:`) || !strings.Contains(msg, "routes[0].mode") {
			t.Errorf("the refusal does not name line and field: %q", msg)
		}
		if v := metricValue(t, r.admin, "strangler_config_last_reload_successful"); v != "0" {
			t.Errorf("strangler_config_last_reload_successful = %q, want 0", v)
		}
		if _, body := getBody(t, url); body != mode {
			t.Errorf("got %q, want the previous config (%s) still serving", body, mode)
		}
	})
	if served.Load() == 0 || failures.Load() != 0 {
		t.Errorf("%d of %d requests failed during reloads", failures.Load(), served.Load())
	}
}

func TestDrainOnShutdown(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 10)
	slow := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		started <- struct{}{}
		<-release
		w.Write([]byte(strings.Repeat("x", int(n%7)) + "done"))
	})
	path := writeConfig(t, "", slow.URL, slow.URL, `  - {name: slow, match: "/slow", mode: legacy}`)
	r := startRun(t, "serve", "--config", path)

	type result struct {
		code int
		body string
		err  error
	}
	results := make(chan result, 3)
	terminated := make(chan struct{})
	for i := range 3 {
		go func() {
			// One of them is an upload still streaming when SIGTERM comes.
			var body io.Reader
			if i == 0 {
				pr, pw := io.Pipe()
				go func() {
					pw.Write(bytes.Repeat([]byte("u"), 1<<20))
					<-terminated
					pw.Write([]byte("end"))
					pw.Close()
				}()
				body = pr
			}
			resp, err := http.Post("http://"+r.public+"/slow", "application/octet-stream", body)
			if err != nil {
				results <- result{err: err}
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			results <- result{resp.StatusCode, string(b), nil}
		}()
	}
	<-started
	<-started
	r.stop() // SIGTERM, while the upload is still streaming
	r.logs.waitFor(t, "draining", nil, 2*time.Second)
	close(terminated)
	if code, _ := getBody(t, "http://"+r.admin+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d while draining, want 503", code)
	}
	close(release)
	for range 3 {
		res := <-results
		if res.err != nil || res.code != 200 || !strings.HasSuffix(res.body, "done") {
			t.Errorf("an in-flight request failed during the drain: %d %q %v", res.code, res.body, res.err)
		}
	}
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("run returned %v after a clean drain", err)
		}
		r.done <- err
	case <-time.After(5 * time.Second):
		t.Fatal("run did not return after the drain")
	}
}

func TestServeRefusesABadConfig(t *testing.T) {
	path := writeConfig(t, "", "http://legacy", "ftp://modern", `  - {name: p, match: "GET /p", mode: legacy}`)
	err := run(context.Background(), []string{"serve", "--config", path}, noEnv, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), path+":5:") || !strings.Contains(err.Error(), "backends.modern.url") {
		t.Errorf("got %v, want an error naming the file, line 5 and backends.modern.url", err)
	}
	var u usageError
	if err := run(context.Background(), []string{"serve"}, noEnv, io.Discard, io.Discard); !errors.As(err, &u) {
		t.Errorf("serve without --config: got %v, want a usage error", err)
	}
}
