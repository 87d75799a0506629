package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestAWriteUnderWayWhenItsRouteChangesGoesWhereTheRouteNowSends: PUT v1
// of an item reached the facade under dual-write (primary legacy), its
// body still on its way, when the route changed: nothing was journaled
// yet, so the change went through. Journaled under the old route, v1 went
// to legacy and on its way to modern, PUT v2 went straight where the new
// route sends it, modern, and v1, delivered after, undid it there: modern
// ended with v1 while the client saw v2 succeed last. Now v1 is served as
// the route is when its body has come: modern ends with v2.
func TestAWriteUnderWayWhenItsRouteChangesGoesWhereTheRouteNowSends(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, r *running, dir, path string, c facadeConfig)
	}{
		{"a flip to modern", func(t *testing.T, r *running, _, _ string, _ facadeConfig) {
			if code, body := tryFlip(t, r.admin, "put-item", map[string]any{"mode": "modern", "reason": "cut over", "force": true}); code != http.StatusOK {
				t.Fatalf("the flip: got %d %s, want 200: nothing of the route's was journaled", code, body)
			}
		}},
		{"a reload makes modern the primary", func(t *testing.T, r *running, dir, path string, c facadeConfig) {
			c.routes = strings.Replace(dualWriteRoutes, `"PUT /items/{id}", mode: dual-write}`, `"PUT /items/{id}", mode: dual-write, primary: modern}`, 1)
			reloadTo(t, r, dir, path, c, 5)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			legacy, modern, released := backendsHoldingDeliveries(t)
			dir := t.TempDir()
			c := facadeConfig{legacy: legacy.URL(), modern: modern.URL(), timeout: 2 * time.Second}
			path := writeFacadeConfig(t, dir, c)
			r := startRun(t, "serve", "--config", path)
			st := openStateStore(t, "sqlite:"+filepath.Join(dir, "strangler.db"))

			// PUT v1 with Expect: 100-continue: the facade says 100 once it
			// reads the body, which it does under the route as it was.
			const v1 = `{"v":1}`
			conn, err := net.Dial("tcp", r.public)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(60 * time.Second))
			io.WriteString(conn, "PUT /items/1 HTTP/1.1\r\nHost: facade\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 7\r\n\r\n")
			answers := bufio.NewReader(conn)
			if res, err := http.ReadResponse(answers, nil); err != nil || res.StatusCode != http.StatusContinue {
				t.Fatalf("PUT v1 with Expect: 100-continue: got %v %v, want 100 Continue", res, err)
			}
			tc.change(t, r, dir, path, c)
			io.WriteString(conn, v1)
			res, err := http.ReadResponse(answers, nil)
			for err == nil && res.StatusCode == http.StatusContinue { // the backend's own, passed on
				res, err = http.ReadResponse(answers, nil)
			}
			if err != nil || res.StatusCode != http.StatusOK {
				t.Fatalf("PUT v1, its body sent after the change: got %v %v, want 200", res, err)
			}
			res.Body.Close()

			putV2Last(t, r, st, modern, released)
		})
	}
}

// TestAStartThatWouldOvertakeJournaledWritesIsRefused: PUT v1 under
// dual-write (primary legacy) waits for modern, which is down, when the
// facade stops; the file is changed to make modern the primary. Started
// with it, the facade sent PUT v2 straight to modern, and v1, delivered
// after, undid it there. Now the built binary refuses to start, naming the
// file, routes[0] (put-item) and what to do; started with the route as it
// was, it delivers v1, and then the changed file starts.
func TestAStartThatWouldOvertakeJournaledWritesIsRefused(t *testing.T) {
	t.Parallel()
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", false, false)
	dir := t.TempDir()
	c := facadeConfig{legacy: legacy.URL(), modern: modern.URL()}
	path := writeFacadeConfig(t, dir, c)
	changed := c
	changed.routes = strings.Replace(dualWriteRoutes, `"PUT /items/{id}", mode: dual-write}`, `"PUT /items/{id}", mode: dual-write, primary: modern}`, 1)
	changedPath := writeFacadeConfig(t, dir, changed)

	modern.stop()
	p := startProcess(t, "serve", "--config", path)
	code, body, err := sendRequest("PUT", "http://"+p.public+"/items/1", `{"v":1}`, nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("PUT v1: got %d %s %v, want 200", code, body, err)
	}
	stopProcess(t, p)

	cmd := exec.Command(binary(t), "serve", "--config", changedPath)
	logs := newLogBuffer()
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var exitErr error
	go func() {
		exitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	for waiting := true; waiting; {
		select {
		case <-exited:
			if exitErr == nil {
				t.Fatalf("the facade exited 0 with the changed file, want an error; log:\n%s", logs)
			}
			waiting = false
		case <-logs.changed:
			if strings.Contains(logs.String(), `"msg":"serving"`) {
				t.Fatalf("the facade serves the changed file, which sends put-item's writes straight to modern while v1 is on its way there; log:\n%s", logs)
			}
		case <-time.After(startWait):
			t.Fatalf("the facade neither served nor exited in %v; log:\n%s", startWait, logs)
		}
	}
	for _, want := range []string{changedPath + ": routes[0] (put-item) would send writes straight to modern", "strangler repairs list --route NAME", "start with the route as it was"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the refusal does not say %q; log:\n%s", want, logs)
		}
	}
	if strings.Contains(logs.String(), `{"v":1}`) {
		t.Errorf("the refusal shows a journaled body; log:\n%s", logs)
	}

	// As it says: the route as it was delivers v1, then the change starts.
	modern.start()
	p = startProcess(t, "serve", "--config", path)
	waitDrained(t, openStateStore(t, "sqlite:"+filepath.Join(dir, "strangler.db")), 60*time.Second)
	stopProcess(t, p)
	p = startProcess(t, "serve", "--config", changedPath)
	if code, body, err := sendRequest("PUT", "http://"+p.public+"/items/1", `{"v":2}`, nil); err != nil || code != http.StatusOK {
		t.Fatalf("PUT v2 once v1 was delivered: got %d %s %v, want 200", code, body, err)
	}
	if items, _ := modern.snapshot(); items["1"] != `{"v":2}` {
		t.Errorf("modern holds item 1 as %s, want v2", items["1"])
	}
}

// stopProcess stops p as an orchestrator does, by SIGTERM, and waits for
// it to exit.
func stopProcess(t *testing.T, p *process) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("the facade did not exit on SIGTERM; log:\n%s", p.logs)
	}
}
