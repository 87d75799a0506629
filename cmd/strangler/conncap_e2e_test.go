package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAFloodOfClientsLeavesTheAdminListenerAndTheStoreWorking runs the
// facade with an open-file limit of 256 and max_connections unset, holds
// as many client connections as the default cap lets in, queues more in
// the kernel's backlog, and checks that the admin listener still answers
// and a flip still reaches the store and the state snapshot's file.
// Without the cap the queued clients take the last descriptors: the
// snapshot cannot be saved, nor the config file read for a reload, and the
// admin listener and the store get a descriptor only when one frees.
func TestAFloodOfClientsLeavesTheAdminListenerAndTheStoreWorking(t *testing.T) {
	legacy := backendAnswering(t, "legacy")
	modern := backendAnswering(t, "modern")
	dir := t.TempDir()
	path := filepath.Join(dir, "strangler.yaml")
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
  tokens: [{name: test, token: %q, role: admin}]
backends:
  legacy: { url: %q }
  modern: { url: %q }
store: "sqlite:%s"
routes:
  - {name: p, match: "GET /p", mode: legacy}
`, e2eAdminToken, legacy.URL, modern.URL, filepath.Join(dir, "strangler.db"))
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	// sh's ulimit (dash's, bash's) sets the soft and the hard limit, so Go
	// cannot raise the soft one again at start.
	p := startProcessesOf(t, "/bin/sh", []string{"-c", `ulimit -n 256 && exec "$0" "$@"`, binary(t), "serve", "--config", path})[0]

	if got := metricValue(t, p.admin, "strangler_client_connections_max"); got != "128" {
		t.Fatalf("default cap with 256 open files: got %q, want 128", got)
	}
	// Each held connection is answered once, then idles, kept alive.
	for i := range 128 {
		c, err := net.Dial("tcp", p.public)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /p HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("client connection %d of 128: %v", i+1, err)
		}
		resp.Body.Close()
	}
	// More clients than descriptors are left, each with a request, so
	// that without the cap they would hold their connections (idle, kept
	// alive) rather than be cut after read_header_timeout: with it they
	// wait in the backlog. The pause lets a facade without the cap take
	// them all before the admin listener is tried.
	for range 150 {
		c, err := net.Dial("tcp", p.public)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		io.WriteString(c, "GET /p HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	time.Sleep(2 * time.Second)

	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + p.admin + "/healthz")
	if err != nil {
		t.Fatalf("admin listener with the public one full: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/healthz with the public listener full: got %d", resp.StatusCode)
	}
	if _, err := flipUntilTaken(p.admin, "p", map[string]any{"mode": "modern"}, "flood"); err != nil {
		t.Errorf("a flip with the public listener full: %v", err)
	}
	// The flip saves the state snapshot, a file, before it logs.
	p.logs.waitFor(t, "route flipped", nil, 10*time.Second)
	if strings.Contains(p.logs.String(), "too many open files") {
		t.Errorf("the facade ran out of file descriptors:\n%s", p.logs.String())
	}
	if got := metricValue(t, p.admin, "strangler_client_connections"); got != "128" {
		t.Errorf("open client connections: got %q, want 128", got)
	}
	if got, _ := strconv.Atoi(metricValue(t, p.admin, "strangler_client_connections_full_total")); got < 1 {
		t.Errorf("times full: got %d, want at least 1", got)
	}
}
