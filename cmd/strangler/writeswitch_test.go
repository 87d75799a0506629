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
// facade stops; the file is changed so that PUT /items/{id} goes to modern
// straight: its route makes modern the primary, or it is renamed so (the
// journal has v1 under the old name), or it is removed and the default
// backend is modern. Started with it, the facade sent PUT v2 straight to
// modern, and v1, delivered after, undid it there. Now the built binary
// refuses to start, naming the file, the route and what to do; started
// with the route as it was, it delivers v1, and then the changed file
// starts.
func TestAStartThatWouldOvertakeJournaledWritesIsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(c *facadeConfig)
		want   string
	}{
		{"the route makes modern the primary", func(c *facadeConfig) {
			c.routes = strings.Replace(dualWriteRoutes, `"PUT /items/{id}", mode: dual-write}`, `"PUT /items/{id}", mode: dual-write, primary: modern}`, 1)
		}, "routes[0] (put-item) would send writes straight to modern, ahead of 1 dual write owed there"},
		{"the route is renamed while the facade is down and makes modern the primary", func(c *facadeConfig) {
			// Before, the start checked put-item-v2, which has no writes
			// in the journal, and served.
			c.routes = strings.Replace(dualWriteRoutes, `{name: put-item, match: "PUT /items/{id}", mode: dual-write}`,
				`{name: put-item-v2, match: "PUT /items/{id}", mode: dual-write, primary: modern}`, 1)
		}, "route put-item of the journal, which the file does not have (removed or renamed while the facade was down), has 1 dual write owed to modern, which routes[0] (put-item-v2) would send writes straight to"},
		{"the route is removed while the facade is down and the default backend is modern", func(c *facadeConfig) {
			c.routes = strings.Replace(dualWriteRoutes, `  - {name: put-item, match: "PUT /items/{id}", mode: dual-write}`+"\n", "", 1)
			c.defaultBackend = "modern"
		}, "route put-item of the journal, which the file does not have (removed or renamed while the facade was down), has 1 dual write owed to modern, which the default backend (default: modern) would send writes straight to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			refusesStartAheadOfJournaledWrites(t, tc.change, tc.want)
		})
	}
}

// refusesStartAheadOfJournaledWrites leaves PUT v1 of item 1 owed to
// modern, then starts the built binary with the file change makes and
// wants it refused saying want; then starts the file as it was, which
// delivers v1, and the changed file, which serves PUT v2 to modern.
func refusesStartAheadOfJournaledWrites(t *testing.T, change func(c *facadeConfig), want string) {
	t.Helper()
	legacy := newRecordingBackend(t, "legacy", false, false)
	modern := newRecordingBackend(t, "modern", false, false)
	dir := t.TempDir()
	c := facadeConfig{legacy: legacy.URL(), modern: modern.URL()}
	path := writeFacadeConfig(t, dir, c)
	changed := c
	change(&changed)
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
	for _, want := range []string{changedPath + ": " + want, "strangler repairs list --route NAME", "start with the route as it was"} {
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
