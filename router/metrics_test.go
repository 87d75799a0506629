package router

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"strangler/internal/testkit"
)

// TestTheCodeLabelIsAClosedSetWhateverTheBackendAnswers: a backend
// answering statuses nobody registered cannot mint label values; the
// client still gets the status as sent.
func TestTheCodeLabelIsAClosedSetWhateverTheBackendAnswers(t *testing.T) {
	addr := testkit.ServeConns(t, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		status := strings.TrimPrefix(req.URL.Path, "/s/")
		fmt.Fprintf(c, "HTTP/1.1 %s Whatever\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status)
	})
	f := newFacade(t, "http://"+addr, "http://"+addr, "", `
  - {name: status, match: "GET /s/{code}", mode: legacy}
`)
	for _, code := range []int{200, 404, 418, 299, 477, 598, 599, 600, 799, 999} {
		resp, err := http.Get(f.URL + fmt.Sprintf("/s/%d", code))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("the client got %d, want the backend's %d", resp.StatusCode, code)
		}
	}
	families, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, fam := range families {
		if fam.GetName() != "strangler_requests_total" {
			continue
		}
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" {
					got = append(got, fmt.Sprintf("%s=%v", l.GetValue(), m.GetCounter().GetValue()))
				}
			}
		}
	}
	slices.Sort(got)
	want := []string{"200=1", "2xx=1", "404=1", "418=1", "4xx=1", "5xx=2", "other=3"}
	if !slices.Equal(got, want) {
		t.Errorf("code labels %v, want %v", got, want)
	}
}
