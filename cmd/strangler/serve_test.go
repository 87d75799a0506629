package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testkit"
	"strangler/store"
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
		r.logs.waitFor(t, "config reloaded", nil, 15*time.Second)
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
		line := r.logs.waitFor(t, "config reload refused; the previous configuration keeps serving", nil, 15*time.Second)
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

// TestDrainOnShutdown follows a facade from SIGTERM to exit: it fails
// /readyz and keeps serving new connections for shutdown.delay, then
// refuses them; requests in flight (an upload still streaming among
// them) finish within shutdown.grace; the repair worker finishes the
// delivery it has in flight and records it; the last counts, those of
// the requests served while draining included, reach the state store.
func TestDrainOnShutdown(t *testing.T) {
	const delay = 3 * time.Second
	release, releaseDelivery := make(chan struct{}), make(chan struct{})
	started := make(chan struct{}, 10)
	legacy := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		w.Write([]byte(strings.Repeat("x", int(n%7)) + "done"))
	})
	deliveries := make(chan struct{}, 10)
	modern := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		deliveries <- struct{}{}
		<-releaseDelivery
	})
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "strangler.db")
	path := filepath.Join(dir, "strangler.yaml")
	if err := os.WriteFile(path, fmt.Appendf(nil, `listen: "127.0.0.1:0"
admin: { listen: "127.0.0.1:0" }
backends:
  legacy: { url: %q, timeout: 30s }
  modern: { url: %q, timeout: 30s }
shutdown: { delay: %s, grace: 30s }
store: %q
routes:
  - {name: slow, match: "/slow", mode: legacy}
  - {name: fast, match: "GET /fast", mode: legacy}
  - {name: put-item, match: "PUT /items/{id}", mode: dual-write}
`, legacy.URL, modern.URL, delay, dsn), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startRun(t, "serve", "--config", path)
	// fresh sends on a connection of its own, as a new client would.
	fresh := func(method, path string) (int, error) {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
		req, _ := http.NewRequest(method, "http://"+r.public+path, strings.NewReader(`{"v":1}`))
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	fastServed := 0
	for range 3 {
		if code, err := fresh("GET", "/fast"); err != nil || code != 200 {
			t.Fatalf("GET /fast before the drain: %d %v", code, err)
		}
		fastServed++
	}
	// A dual write whose delivery to the secondary is in flight at SIGTERM.
	if code, err := fresh("PUT", "/items/1"); err != nil || code != 200 {
		t.Fatalf("PUT /items/1: %d %v, want the primary's 200", code, err)
	}
	<-deliveries

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
	sigterm := time.Now()
	r.stop() // SIGTERM, while the upload is still streaming
	r.logs.waitFor(t, "draining", nil, 10*time.Second)
	close(terminated)
	if code, _ := getBody(t, "http://"+r.admin+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d while draining, want 503", code)
	}
	if code, err := fresh("GET", "/fast"); err != nil || code != 200 {
		t.Errorf("a new client during shutdown.delay: got %d %v, want it served", code, err)
	} else {
		fastServed++
	}
	if time.Since(sigterm) > delay {
		t.Logf("the request meant for the delay came %v after SIGTERM, after it", time.Since(sigterm))
	}

	// After the delay, new connections are refused while the requests in
	// flight go on.
	testkit.Eventually(t, delay+20*time.Second, "new connections refused after shutdown.delay", func() bool {
		_, err := fresh("GET", "/fast")
		if err == nil {
			fastServed++
		}
		return err != nil
	})
	if took := time.Since(sigterm); took < delay {
		t.Errorf("new connections were refused %v after SIGTERM, before shutdown.delay (%v) ended", took, delay)
	}
	close(release)
	for range 3 {
		res := <-results
		if res.err != nil || res.code != 200 || !strings.HasSuffix(res.body, "done") {
			t.Errorf("an in-flight request failed during the drain: %d %q %v", res.code, res.body, res.err)
		}
	}
	// Run may not return while the worker has a delivery in flight: a
	// worker that stopped without it would let run return now. Give it
	// the time to show (a run that returns fails the test; one that does
	// not is what is wanted), then let the secondary answer.
	select {
	case err := <-r.done:
		t.Errorf("run returned (%v) while a delivery to the secondary was in flight", err)
		r.done <- err
	case <-time.After(2 * time.Second):
	}
	close(releaseDelivery)
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("run returned %v after a clean drain", err)
		}
		r.done <- err
	case <-time.After(30 * time.Second):
		t.Fatal("run did not return after the drain")
	}

	st := openStateStore(t, dsn)
	ctx := context.Background()
	writes, err := st.ListRepairs(ctx, store.RepairFilter{})
	if err != nil || len(writes) != 1 || writes[0].State != domain.StateDone {
		t.Errorf("the dual write after the drain: %+v %v, want one, done: the worker finishes its deliveries before exit", writes, err)
	}
	counts, err := st.Counts(ctx, "fast", sigterm.Add(-time.Hour))
	if err != nil || counts.Requests != int64(fastServed) {
		t.Errorf("requests of route fast in the store: %d %v, want the %d served, the drain's included: the last counts are flushed at exit", counts.Requests, err, fastServed)
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
