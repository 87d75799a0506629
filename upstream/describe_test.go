package upstream

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDescribeKeepsNoByteOfTheBackendsAnswer: net/http quotes the bytes it
// could not parse as HTTP in its errors (a status line, a header line, a
// Content-Length), and a backend's stray bytes may be a patient's record.
// Describe, what logs, spans and the repair queue show of a failed
// exchange, says what went wrong without them and without the URL, and
// keeps what Classify and errors.Is read.
func TestDescribeKeepsNoByteOfTheBackendsAnswer(t *testing.T) {
	const secret = "Ada Lovelace 1815-12-10"
	for name, answer := range map[string]string{
		"not HTTP":        secret + "\r\n\r\n",
		"status code":     "HTTP/1.1 2" + secret + "\r\n\r\n",
		"version":         "HTTP/9." + secret + " 200 OK\r\n\r\n",
		"header line":     "HTTP/1.1 200 OK\r\n" + secret + "\r\n\r\n",
		"content-length":  "HTTP/1.1 200 OK\r\nContent-Length: " + secret + "\r\n\r\n",
		"transfer coding": "HTTP/1.1 200 OK\r\nTransfer-Encoding: " + secret + "\r\n\r\n",
	} {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(name+"/"+method, func(t *testing.T) {
				u := New("legacy", Config{URL: mustURL(t, rawBackend(t, answer)), Timeout: 5 * time.Second})
				var body []byte
				if method == http.MethodPost {
					body = []byte(`{}`)
				}
				resp, err := u.RoundTrip(NewRequest(context.Background(), method, u.Target(mustURL(t, "/patients/4711")), http.Header{}, body))
				if err == nil {
					resp.Body.Close()
					t.Fatalf("%q was taken as an answer", answer)
				}
				got := Describe(err).Error()
				for _, word := range append(strings.Fields(secret), "4711") {
					if strings.Contains(got, word) {
						t.Errorf("Describe(%q) = %q: it quotes the backend or the path", err, got)
					}
				}
				if !strings.Contains(got, "not valid HTTP") {
					t.Errorf("Describe(%q) = %q: want it to say the answer was not valid HTTP", err, got)
				}
			})
		}
	}
}
