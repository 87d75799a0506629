package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

// These tests play a broken or hostile backend answering in ways no
// client of the facade may see, over both ways a request leaves: the
// direct client (a GET) and the transport (a POST with a body over
// maxDirectBody).

// sendBoth sends a GET and a large POST to a backend writing answer to
// every request, and gives each way's outcome to check.
func sendBoth(t *testing.T, answer string, check func(t *testing.T, resp *http.Response, err error)) {
	t.Helper()
	url, _ := writeBackend(t, func(c net.Conn, req *http.Request, _ time.Duration) bool {
		io.WriteString(c, answer)
		return true
	})
	u := New("legacy", Config{URL: mustURL(t, url), Timeout: 5 * time.Second})
	t.Run("GET, direct", func(t *testing.T) {
		resp, err := get(t, u)
		check(t, resp, err)
	})
	t.Run("POST, transport", func(t *testing.T) {
		body := bytes.Repeat([]byte("b"), maxDirectBody+1)
		resp, err := write(u, http.MethodPost, bytes.NewReader(body), int64(len(body)))
		check(t, resp, err)
	})
}

// TestAResponseHeadIsBoundedLikeARequestHead: a head of many short fields
// over 64 KiB fails the attempt instead of being parsed whole (at the
// 10 MiB net/http allows, one such answer took 290 MiB of the facade's
// heap); one under it passes.
func TestAResponseHeadIsBoundedLikeARequestHead(t *testing.T) {
	head := func(size int) string {
		var b strings.Builder
		b.WriteString("HTTP/1.1 200 OK\r\n")
		for i := 0; b.Len() < size; i++ {
			fmt.Fprintf(&b, "H%d: v\r\n", i)
		}
		return b.String() + "Content-Length: 2\r\n\r\nok"
	}
	const bound = 64 << 10 // the README's figure
	t.Run("over", func(t *testing.T) {
		sendBoth(t, head(bound+1), func(t *testing.T, resp *http.Response, err error) {
			if err == nil {
				resp.Body.Close()
				t.Fatalf("a head of %d bytes was accepted, over the bound of %d", bound+1, bound)
			}
		})
	})
	t.Run("under", func(t *testing.T) {
		sendBoth(t, head(bound-1024), func(t *testing.T, resp *http.Response, err error) {
			if err != nil {
				t.Fatalf("a head under the bound failed: %v", err)
			}
			if got := readAll(t, resp); got != "ok" {
				t.Errorf("body %q, want ok", got)
			}
		})
	})
}

// TestAnAnswerWithoutAFinalStatusFails: a status below 100, which
// net/http reads as one, and a 101 to a request that asked for no
// upgrade end no exchange: the attempt fails, as for an answer that is
// not HTTP, so that the client gets a 502 (not a cut connection), a
// fallback route falls back, and a dual write is journaled as unknown.
func TestAnAnswerWithoutAFinalStatusFails(t *testing.T) {
	for _, answer := range []string{
		"HTTP/1.1 000 Zero\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 099 Low\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	} {
		t.Run(strings.SplitN(answer, "\r\n", 2)[0], func(t *testing.T) {
			sendBoth(t, answer, func(t *testing.T, resp *http.Response, err error) {
				if !errors.Is(err, errNotFinal) {
					if err == nil {
						resp.Body.Close()
					}
					t.Fatalf("got %v, %v; want errNotFinal", resp, err)
				}
			})
		})
	}
	t.Run("a 101 to a request that asked to upgrade is the answer", func(t *testing.T) {
		url, _ := writeBackend(t, func(c net.Conn, req *http.Request, _ time.Duration) bool {
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
			return false
		})
		u := New("legacy", Config{URL: mustURL(t, url), Timeout: 5 * time.Second})
		req, _ := http.NewRequest(http.MethodGet, u.Target(&urlX).String(), nil)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		resp, err := u.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Errorf("status %d, want 101", resp.StatusCode)
		}
	})
}

// TestTrailerFieldsNoClientMayReadThereAreDropped: of a backend's trailer
// fields, announced or not, only those that may be trailer fields are
// left once the body is read: not framing (a Content-Length trailer field
// reached the client), hop-by-hop fields, routing, response controls or
// cookies.
func TestTrailerFieldsNoClientMayReadThereAreDropped(t *testing.T) {
	for name, announce := range map[string]string{
		"unannounced": "",
		"announced":   "Trailer: X-Checksum, Set-Cookie, Location\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			sendBoth(t, "HTTP/1.1 200 OK\r\n"+announce+"Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"+
				"X-Checksum: 42\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\nConnection: X-Named\r\nX-Named: 1\r\n"+
				"Keep-Alive: timeout=1\r\nHost: elsewhere\r\nSet-Cookie: s=1\r\nLocation: /elsewhere\r\nContent-Type: text/html\r\n\r\n",
				func(t *testing.T, resp *http.Response, err error) {
					if err != nil {
						t.Fatal(err)
					}
					if body := readAll(t, resp); body != "ok" {
						t.Errorf("body %q, want ok", body)
					}
					if want := (http.Header{"X-Checksum": {"42"}}); fmt.Sprint(resp.Trailer) != fmt.Sprint(want) {
						t.Errorf("trailer %v, want %v", resp.Trailer, want)
					}
				})
		})
	}
}

// TestAMalformedTrailerLineLeavesNoByteInTheError: net/http quotes a
// malformed trailer line in the error of the body's read, which the
// reverse proxy logs; the line may be a patient's record.
func TestAMalformedTrailerLineLeavesNoByteInTheError(t *testing.T) {
	sendBoth(t, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nAda Lovelace 1815\r\n\r\n",
		func(t *testing.T, resp *http.Response, err error) {
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			_, err = io.ReadAll(resp.Body)
			if err == nil || strings.Contains(err.Error(), "Lovelace") {
				t.Errorf("the body's read failed with %v, want an error without the backend's bytes", err)
			}
		})
}

// TestHeldInformationalResponsesLoseHopByHopHeaders: a 1xx response held
// back (fallback holds modern's until its answer is known) is released
// without its hop-by-hop fields and those its Connection field names, as
// one passed on at once is (they reached a fallback route's client).
func TestHeldInformationalResponsesLoseHopByHopHeaders(t *testing.T) {
	url := rawBackend(t, "HTTP/1.1 103 Early Hints\r\nConnection: X-Secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nLink: </a.css>\r\n\r\n"+
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	u := New("modern", Config{URL: mustURL(t, url), Timeout: 5 * time.Second})
	for name, send := range holdingWays(u) {
		t.Run(name, func(t *testing.T) {
			var got []textproto.MIMEHeader
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
				got = append(got, h)
				return nil
			}})
			outer := NewRequest(ctx, http.MethodGet, u.Target(mustURL(t, "/")), http.Header{}, nil)
			var held Informational
			resp, err := send(outer, &held)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			held.Release(outer)
			if want := (textproto.MIMEHeader{"Link": {"</a.css>"}}); len(got) != 1 || fmt.Sprint(got[0]) != fmt.Sprint(want) {
				t.Errorf("released %v, want one 103 with %v", got, want)
			}
		})
	}
}
