package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"strangler/edge"
)

// TestASaturatedAdminListenerShowsInItsMetrics: the admin listener holds
// at most adminMaxConnections and keeps the rest waiting in the kernel's
// backlog, which nothing showed: an operator whose CLI or browser hung saw
// no metric saying why. A scrape on a connection Prometheus keeps alive
// still gets through, and shows the listener full.
func TestASaturatedAdminListenerShowsInItsMetrics(t *testing.T) {
	legacy := backendAnswering(t, `{"served_by":"legacy"}`)
	path := writeConfig(t, "", legacy.URL, legacy.URL, `  - { name: get-record, match: "GET /records/{id}", mode: legacy }
`)
	p := startProcess(t, "serve", "--config", path)

	// get sends a GET of target on c and reads the answer's body.
	get := func(c net.Conn, r *bufio.Reader, target string) string {
		t.Helper()
		io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: "+p.admin+"\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("GET %s: %v", target, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d, %v", target, resp.StatusCode, err)
		}
		return string(body)
	}
	dial := func() net.Conn {
		t.Helper()
		c, err := net.Dial("tcp", p.admin)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	scraper := dial()
	scrapes := bufio.NewReader(scraper)
	get(scraper, scrapes, "/metrics")
	// The rest of the listener's connections, each answered once and
	// then idle, kept alive; one more client waits in the backlog.
	for range adminMaxConnections - 1 {
		c := dial()
		get(c, bufio.NewReader(c), "/healthz")
	}
	io.WriteString(dial(), "GET /healthz HTTP/1.1\r\nHost: "+p.admin+"\r\n\r\n")
	p.logs.waitFor(t, edge.AdminListener.Warning, nil, 10*time.Second)

	metrics := get(scraper, scrapes, "/metrics")
	value := func(name string) float64 {
		for _, line := range strings.Split(metrics, "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return f
			}
		}
		t.Fatalf("no %s in the scrape", name)
		return 0
	}
	if got := value("strangler_admin_connections"); got != adminMaxConnections {
		t.Errorf("strangler_admin_connections: got %v, want %d", got, adminMaxConnections)
	}
	if got := value("strangler_admin_connections_max"); got != adminMaxConnections {
		t.Errorf("strangler_admin_connections_max: got %v, want %d", got, adminMaxConnections)
	}
	if got := value("strangler_admin_connections_full_total"); got < 1 {
		t.Errorf("strangler_admin_connections_full_total: got %v, want at least 1", got)
	}
}
