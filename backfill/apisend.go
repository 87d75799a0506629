package backfill

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"time"

	"strangler/config"
	"strangler/domain"
	"strangler/upstream"
)

// apiClient sends requests to the modern service.
type apiClient struct {
	base    string
	headers map[string]string
	http    *http.Client
}

func newAPIClient(cfg *config.BackfillAPI) *apiClient {
	h := map[string]string{}
	for k, v := range cfg.Headers {
		h[k] = string(v)
	}
	// Every group in flight keeps its connection: the default two idle
	// connections per host would have the others dial anew per request.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	// As the facade bounds a backend's (upstream's maxResponseHead): at
	// net/http's default of 10 MiB, a head of many short fields takes
	// some thirty times its size in memory, per group in flight.
	tr.MaxResponseHeaderBytes = 64 << 10
	aging := &agingTransport{Transport: tr, maxAge: upstream.DefaultMaxConnAge, now: time.Now}
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &datedConn{Conn: c, dialed: aging.now()}, nil
	}
	return &apiClient{base: strings.TrimRight(cfg.URL, "/"), headers: h,
		http: &http.Client{Timeout: time.Duration(cfg.Timeout), Transport: aging,
			// A redirect is the answer, never followed: Go would follow a
			// 301 to a PUT with a bodiless GET, whose 200 would mark a row
			// migrated that was never imported, and a 307 elsewhere than
			// the row's resource.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// agingTransport uses each connection for at most maxAge, as the
// facade's backends are (upstream.DefaultMaxConnAge): a request that gets
// an older connection asks for it to be closed once its exchange ends
// (HTTP/1.1), or taken for no further request (HTTP/2), and the next
// request dials, resolving the service's name again. A run lasts hours
// at a steady pace, so its connections are never idle long enough to be
// closed, and without a bound it sent every row to the service's old
// address after its name moved (blue/green, failover).
type agingTransport struct {
	*http.Transport
	maxAge time.Duration
	now    func() time.Time
}

// datedConn is a connection of agingTransport's, with when it was dialed.
type datedConn struct {
	net.Conn
	dialed time.Time
}

func (t *agingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// A RoundTripper may not change the request it is given: out and its
	// header are ours. The header, not out.Close: the transport sends a
	// copy of a request with a body, which shares out's header map.
	header := req.Header.Clone()
	out := req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) {
		c := info.Conn
		if tc, ok := c.(*tls.Conn); ok {
			c = tc.NetConn()
		}
		// Read by the transport only after GotConn returns (when it
		// writes the request), on this goroutine. A server closes the
		// connection after answering it (RFC 9112, 9.6); HTTP/2 takes
		// no further request on it.
		if d, ok := c.(*datedConn); ok && t.now().Sub(d.dialed) >= t.maxAge {
			header.Set("Connection", "close")
		}
	}}))
	out.Header = header
	return t.Transport.RoundTrip(out)
}

// answer is what one request came back with: status 0 when none came.
type answer struct {
	status     int
	message    string
	retryAfter time.Duration
	// page is a 2xx that came as an HTML page (see accepted).
	page bool
	// redirect is the scheme and host a 3xx's Location names, when it
	// names one: never its path, which may carry the row's columns.
	redirect string
}

// accepted reports whether the service accepted the request: a 2xx that
// is not an HTML page. A sign-in proxy in front of the service answers
// every request 200 with its login page; taken for acceptance, every row
// was marked migrated that the service never saw, and no re-run sent it
// again.
func (a answer) accepted() bool { return a.status/100 == 2 && !a.page }

// htmlPage reports whether a Content-Type says an HTML page.
func htmlPage(contentType string) bool {
	t, _, _ := mime.ParseMediaType(contentType)
	return t == "text/html" || t == "application/xhtml+xml"
}

// do sends one request and reads its answer; err is set only when no
// answer came (a refused connection, a timeout).
func (c *apiClient) do(ctx context.Context, method, path string, body []byte, key string) (answer, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return answer{}, err
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// Without the URL (its path carries the row's columns) and
		// without the bytes of an answer that was not HTTP: the ledger
		// keeps this message.
		return answer{}, upstream.Describe(err)
	}
	defer resp.Body.Close()
	// Only the start is kept (an error's message), but the rest is read
	// too, within timeout, to its end: only the end says the answer came
	// whole, however long it is.
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	if err != nil {
		// A body cut off or stalled past timeout is no answer: a status
		// sent before the service finished (a proxy streaming it, a
		// handler that wrote 200 and then failed) does not say the row
		// applied, and taken for acceptance it would mark a row migrated
		// that no re-run sends again. The retry carries the same
		// Idempotency-Key.
		return answer{}, fmt.Errorf("the answer (%d) did not arrive whole: %w", resp.StatusCode, upstream.Describe(err))
	}
	a := answer{status: resp.StatusCode}
	switch {
	case resp.StatusCode/100 != 2:
		a.message = errorMessage(b)
	case htmlPage(resp.Header.Get("Content-Type")):
		a.page = true
		a.message = "an HTML page (a sign-in page or a proxy's?), not the service's answer"
	}
	if resp.StatusCode/100 == 3 {
		if loc, err := resp.Location(); err == nil {
			a.redirect = loc.Scheme + "://" + loc.Host
		}
	}
	a.retryAfter = upstream.RetryAfter(resp.StatusCode, resp.Header.Get("Retry-After"), time.Now())
	return a, nil
}

// errorMessage is the API's error message: the error or message field of
// a JSON answer, else the start of its text.
func errorMessage(body []byte) string {
	var v struct{ Error, Message string }
	if json.Unmarshal(body, &v) == nil && (v.Error != "" || v.Message != "") {
		return cmp.Or(v.Error, v.Message)
	}
	return shortMessage(strings.TrimSpace(string(body)))
}

// retryable reports whether a request may be tried again: it got no
// answer, or one that says try later (408, 429, 5xx), and nothing that
// stops the run (runVerdict). The Idempotency-Key makes a retry of a
// write that did apply harmless.
func retryable(a answer, err error) bool {
	if runVerdict(a, err) != "" {
		return false
	}
	return err != nil || a.status == http.StatusRequestTimeout || a.status == http.StatusTooManyRequests || a.status >= 500
}

// backoff is the wait before attempt n+1 (n from 1): exponential from
// r.Backoff up to r.MaxBackoff, with jitter over its upper half so that
// groups answered 503 together do not come back together; at least what
// Retry-After asked for, up to r.MaxBackoff: a service asking for hours
// (or, by a bug, for years) would otherwise hold its group, and the run,
// that long without a word, where a row that keeps being refused fails as
// retries_exhausted and an --only-failed re-run takes it later.
func backoff(r config.Retry, n int, retryAfter time.Duration) time.Duration {
	d := time.Duration(r.Backoff)
	for i := 1; i < n && d < time.Duration(r.MaxBackoff); i++ {
		d *= 2
	}
	d = min(d, time.Duration(r.MaxBackoff))
	d = d/2 + rand.N(d/2+1)
	return max(d, min(retryAfter, time.Duration(r.MaxBackoff)))
}

// step runs a before or after step; anything but 2xx is an error.
func (c *apiClient) step(ctx context.Context, s config.APIStep) error {
	var body []byte
	if s.Body != "" {
		body = []byte(s.Body)
	}
	a, err := c.do(ctx, s.Method, s.Path, body, "")
	switch {
	case err != nil:
		return fmt.Errorf("%s %s: %w", s.Method, s.Path, err)
	case !a.accepted():
		return fmt.Errorf("%s %s: the API answered %d: %s", s.Method, s.Path, a.status, a.message)
	}
	return nil
}

// waitUntil polls until the field of the answer equals the awaited value.
func (c *apiClient) waitUntil(ctx context.Context, w *config.WaitUntil) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(w.Timeout))
	defer cancel()
	last := "no answer yet"
	for {
		got, err := c.field(ctx, w.Path, w.Field)
		if stop := (*serviceStop)(nil); errors.As(err, &stop) {
			return fmt.Errorf("wait_until: %w", err)
		}
		switch {
		case err == nil && fieldEquals(got, w.Equals):
			return nil
		case err == nil:
			last = fmt.Sprintf("%s is %s", w.Field, got)
		case ctx.Err() == nil:
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("wait_until: %s %s=%s not reached in %s (%s)", w.Path, w.Field, w.Equals, time.Duration(w.Timeout), last)
			}
			return ctx.Err()
		case <-time.After(time.Duration(w.Every)):
		}
	}
}

// fieldEquals reports whether a field's JSON text is the awaited value:
// a number by its value, as shadow comparisons read numbers (0.0 and 0e3
// are 0), a string without its quotes, anything else as written.
func fieldEquals(got, want string) bool {
	if jsonNumber(got) && jsonNumber(want) {
		return domain.NumbersEqual([]byte(got), []byte(want))
	}
	return got == want || strings.Trim(got, `"`) == want
}

// jsonNumber reports whether s is a JSON number literal.
func jsonNumber(s string) bool {
	return s != "" && (s[0] == '-' || s[0] >= '0' && s[0] <= '9') && json.Valid([]byte(s))
}

// field GETs path and returns a top-level field of its JSON answer as
// JSON text.
func (c *apiClient) field(ctx context.Context, path, field string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return "", err
	}
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	var a answer
	if err == nil {
		defer resp.Body.Close()
		a.status = resp.StatusCode
	}
	err = upstream.Describe(err)
	if why := runVerdict(a, err); why != "" {
		// Polling on would not change it: the wait stops as a table does.
		return "", &serviceStop{service: serviceName(c.base), why: why}
	}
	if err != nil {
		return "", err
	}
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("GET %s: the API answered %d", path, resp.StatusCode)
	}
	var v map[string]json.RawMessage
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&v); err != nil {
		return "", fmt.Errorf("GET %s: not a JSON object: %w", path, err)
	}
	raw, ok := v[field]
	if !ok {
		return "", fmt.Errorf("GET %s: no field %q in the answer", path, field)
	}
	return string(raw), nil
}
