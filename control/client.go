package control

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"

	"strangler/internal/human"
)

// ClientTimeout bounds one call of the admin API. The API's own store
// calls time out after five seconds; a report makes several.
const ClientTimeout = 30 * time.Second

// maxAnswer caps an admin API answer the client reads: a repair's body
// (up to max_replay_body, 10 MiB by default) in base64 fits.
const maxAnswer = 64 << 20

// Client calls a running facade's admin API, as the CLI does.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// NewClient returns a client of the admin API at base (http or https,
// no query) that presents token as a bearer token.
func NewClient(base *url.URL, token string) *Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &Client{
		base:  base,
		token: token,
		http: &http.Client{
			Timeout: ClientTimeout,
			// Only the admin listener is talked to: no proxy from the
			// environment sees the token.
			Transport: &http.Transport{DialContext: dialer.DialContext, TLSHandshakeTimeout: 5 * time.Second},
			// No redirect is followed (the admin listener sends none): Go
			// turns a PATCH, POST or DELETE redirected by 301 or 302 into
			// a GET, whose 200 would read as the change's, and sends the
			// token on to any port of the same host.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// APIError is the admin API's answer to a call that failed: its status
// and the message of its {"error": …} body.
type APIError struct {
	Status int
	Msg    string
}

func (e *APIError) Error() string { return e.Msg }

// StatusOf returns the admin API's status for err, or 0 if err is not an
// answer of the API.
func StatusOf(err error) int {
	var e *APIError
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// Answer is a successful answer: its status, ETag and raw JSON body.
type Answer struct {
	Status int
	ETag   string
	Body   []byte
}

// Call sends a request to the admin API: path, already escaped (route
// names through url.PathEscape), below the base URL; body, if not nil, as
// JSON; ifMatch, if set, as If-Match. Any answer but 2xx is an *APIError
// or a plain error that says what to do about it.
func (c *Client) Call(ctx context.Context, method, path string, query url.Values, body any, ifMatch string) (Answer, error) {
	u := *c.base
	plain, err := url.PathUnescape(path)
	if err != nil {
		return Answer{}, fmt.Errorf("admin API path %q: %w", path, err)
	}
	u.RawPath = c.base.EscapedPath() + path
	u.Path += plain
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return Answer{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "strangler-cli")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Answer{}, c.unreachable(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return Answer{}, fmt.Errorf("reading the admin API's answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		return Answer{}, c.redirected(resp)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Answer{}, apiFailure(resp.StatusCode, b)
	}
	return Answer{Status: resp.StatusCode, ETag: resp.Header.Get("ETag"), Body: b}, nil
}

// Get calls GET path and decodes the answer into v; it returns the raw
// answer too, for --json.
func (c *Client) Get(ctx context.Context, path string, query url.Values, v any) (Answer, error) {
	resp, err := c.Call(ctx, http.MethodGet, path, query, nil, "")
	if err != nil {
		return resp, err
	}
	return resp, Decode(resp.Body, v)
}

// Send calls a changing method with a JSON body and decodes the answer
// into v.
func (c *Client) Send(ctx context.Context, method, path string, body any, ifMatch string, v any) (Answer, error) {
	resp, err := c.Call(ctx, method, path, nil, body, ifMatch)
	if err != nil {
		return resp, err
	}
	return resp, Decode(resp.Body, v)
}

// Decode decodes an answer's body into v (nil: not at all), or says the
// answer is not what this version of the API sends.
func Decode(b []byte, v any) error {
	if v == nil {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("the admin API's answer is not the JSON this command expects (is --admin a strangler admin listener of the same version?): %w", err)
	}
	return nil
}

// apiFailure turns a failed answer into an error a person can act on.
func apiFailure(status int, body []byte) error {
	var e struct {
		Error string `json:"error"`
	}
	msg := ""
	if json.Unmarshal(body, &e) == nil {
		// Printed to a terminal: whatever answers at --admin, and the
		// backends' and operators' texts an error may quote, must not
		// act on it.
		msg = human.Printable(e.Error, false)
	}
	switch {
	case status == http.StatusUnauthorized:
		msg = "the admin API refused the token: set STRANGLER_ADMIN_TOKEN to an admin token"
	case msg == "":
		// Not the admin API's JSON: a proxy, or not strangler at all.
		msg = fmt.Sprintf("the admin API answered %d %s (is --admin a strangler admin listener?)", status, http.StatusText(status))
	}
	return &APIError{Status: status, Msg: msg}
}

// redirected says where a redirect answering at --admin points: a
// strangler admin listener sends none, so --admin names something else
// (a load balancer's old address, http where it wants https).
func (c *Client) redirected(resp *http.Response) error {
	to := "nowhere it says"
	if loc, err := resp.Location(); err == nil {
		to = human.Printable(loc.Redacted(), false)
	}
	return &APIError{Status: resp.StatusCode, Msg: fmt.Sprintf("%s answered %d %s redirecting to %s; nothing was sent there (a redirect would turn a change into a read): set --admin to the admin listener's own URL",
		c.base.Redacted(), resp.StatusCode, http.StatusText(resp.StatusCode), to)}
}

// unreachable says what to check when the admin API did not answer.
func (c *Client) unreachable(err error) error {
	base := c.base.Redacted()
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach the admin API at %s: is strangler serve running, and is --admin right?", base)
	case errors.As(err, &dnsErr):
		return fmt.Errorf("cannot reach the admin API at %s: no such host %q; is --admin right?", base, dnsErr.Name)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Errorf("the admin API at %s did not answer within %v", base, ClientTimeout)
	case errors.Is(err, context.Canceled):
		return err
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err // the URL is said once, in front
	}
	return fmt.Errorf("cannot reach the admin API at %s: %w", base, err)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}
