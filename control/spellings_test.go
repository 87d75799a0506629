package control

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"strangler/domain"
)

// TestNoSpellingOfAnAdminPathSkipsItsChecks sends admin calls with the
// path spelled every way a proxy, a client or an attacker might (doubled
// slashes, dot segments, upper case, percent-encoding, a trailing slash)
// over a raw socket, as sent: none reaches an endpoint without a token, a
// viewer's token changes nothing, and a change by another spelling is
// audited like one by the path itself.
func TestNoSpellingOfAnAdminPathSkipsItsChecks(t *testing.T) {
	p := newPlane(t)
	send := func(t *testing.T, method, target, token, body string) (int, string) {
		t.Helper()
		conn, err := net.Dial("tcp", strings.TrimPrefix(p.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n", method, target)
		if token != "" {
			req += "Authorization: Bearer " + token + "\r\n"
		}
		if body != "" {
			req += fmt.Sprintf("Content-Type: application/json\r\nIf-Match: \"0\"\r\nContent-Length: %d\r\n", len(body))
		}
		if _, err := io.WriteString(conn, req+"\r\n"+body); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	spellings := []string{
		"//admin/routes/get-patient", "/admin//routes/get-patient", "/admin/routes//get-patient",
		"/admin/./routes/get-patient", "/admin/x/../routes/get-patient", "/static/../admin/routes/get-patient",
		"/ADMIN/routes/get-patient", "/Admin/Routes/get-patient", "/admin/routes/get-patient/",
		"/admin/%72outes/get-patient", "/%61dmin/routes/get-patient", "/admin%2Froutes/get-patient",
		"/admin/routes%2Fget-patient", "/admin/routes/get-patient%2F", "/admin/routes/get-patient;x",
		"/admin/routes/get-patient?token=", "/admin/routes/get%2Dpatient", "http://x/admin/routes/get-patient",
	}
	for _, target := range spellings {
		t.Run(target, func(t *testing.T) {
			if code, body := send(t, "GET", target, "", ""); code < 300 || code == http.StatusNotModified ||
				strings.Contains(body, `"file_mode"`) {
				t.Errorf("GET without a token: got %d %.200s, want a refusal, a redirect or 404", code, body)
			}
			flip := `{"mode":"modern","reason":"by another spelling"}`
			for _, token := range []string{"", veraToken} {
				if code, body := send(t, "PATCH", target, token, flip); code < 300 {
					t.Errorf("PATCH with token %q: got %d %.200s, want a refusal, a redirect or 404", token, code, body)
				}
			}
		})
	}
	if p.mode("get-patient") != domain.ModeFallback {
		t.Errorf("a spelling changed the route to %s", p.mode("get-patient"))
	}
	t.Run("a change by a spelling that reaches the endpoint is audited as the endpoint", func(t *testing.T) {
		code, body := send(t, "PATCH", "/admin/%72outes/get-patient", bobToken, `{"mode":"fallback","percent":50,"reason":"spelled oddly"}`)
		if code != http.StatusOK {
			t.Skipf("this spelling does not reach the endpoint (%d %.100s)", code, body)
		}
		for _, a := range p.auditActions(t) {
			if strings.HasPrefix(a, "bob ") && strings.HasSuffix(a, " get-patient") {
				return
			}
		}
		t.Errorf("the flip is not audited: %v", p.auditActions(t))
	})
}
