package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
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
			legacy := newRecordingBackend(t, "legacy", false, false)
			modern := newRecordingBackend(t, "modern", false, false)
			release := make(chan struct{})
			released := sync.OnceFunc(func() { close(release) })
			t.Cleanup(released)
			modern.hold = func(r *http.Request) {
				if r.Header.Get("X-Strangler-Primary-Status") != "" {
					<-release // a delivery: held until v2 was answered
				}
			}
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

			code, body, err := sendRequest("PUT", "http://"+r.public+"/items/1", `{"v":2}`, nil)
			if err != nil || code != http.StatusOK {
				t.Fatalf("PUT v2: got %d %s %v, want 200", code, body, err)
			}
			released()
			waitDrained(t, st, 60*time.Second)
			if items, _ := modern.snapshot(); items["1"] != `{"v":2}` {
				t.Errorf("modern holds item 1 as %s, want the last write the client saw succeed, v2", items["1"])
			}
		})
	}
}
