package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// defaultAdmin is where the admin commands look for a facade when neither
// --admin nor STRANGLER_ADMIN says otherwise: admin.listen's default.
const defaultAdmin = "http://127.0.0.1:9901"

// tokenHelp is the usage text's word on the admin token; the token is
// never a flag, because a flag value lands in shell history and in the
// process list.
const tokenHelp = `The admin URL comes from --admin or STRANGLER_ADMIN (default ` + defaultAdmin + `).
The admin token comes only from STRANGLER_ADMIN_TOKEN and is sent as
Authorization: Bearer; it is never accepted as a flag, so it stays out of
shell history and the process list.
`

// adminTimeout bounds one call of the admin API. The API's own store calls
// time out after five seconds; a report makes several.
const adminTimeout = 30 * time.Second

// maxAdminBody caps an admin API answer the client reads: a repair's body
// (up to max_replay_body, 10 MiB by default) in base64 fits.
const maxAdminBody = 64 << 20

// adminClient talks to a running facade's admin API.
type adminClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

// adminFlags adds --admin to fs; the function it returns builds the
// client once the flags are parsed.
func adminFlags(fs *flag.FlagSet, getenv func(string) string) func() (*adminClient, error) {
	def := getenv("STRANGLER_ADMIN")
	if def == "" {
		def = defaultAdmin
	}
	admin := fs.String("admin", def, "admin API `URL` (env STRANGLER_ADMIN)")
	return func() (*adminClient, error) {
		// A token read from a file often ends in a newline.
		return newAdminClient(*admin, strings.TrimSpace(getenv("STRANGLER_ADMIN_TOKEN")))
	}
}

// newAdminClient returns a client of the admin API at admin (a URL, or a
// bare host:port taken as http) that presents token.
func newAdminClient(admin, token string) (*adminClient, error) {
	if !strings.Contains(admin, "://") {
		admin = "http://" + admin
	}
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError{fmt.Sprintf("--admin %q: want the admin listener's URL, such as %s", admin, defaultAdmin)}
	}
	if u.User != nil || u.RawQuery != "" {
		return nil, usageError{fmt.Sprintf("--admin %q: give only scheme, host, port and path; the token comes from STRANGLER_ADMIN_TOKEN", u.Redacted())}
	}
	if token == "" {
		return nil, errors.New("no admin token: set STRANGLER_ADMIN_TOKEN to an admin token (it is never taken as a flag, to keep it out of shell history)")
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &adminClient{
		base:  u,
		token: token,
		http: &http.Client{
			Timeout: adminTimeout,
			// Only the admin listener is talked to: no proxy from the
			// environment sees the token.
			Transport: &http.Transport{DialContext: dialer.DialContext, TLSHandshakeTimeout: 5 * time.Second},
		},
	}, nil
}

// adminError is the admin API's answer to a call that failed: its status
// and the message of its {"error": …} body.
type adminError struct {
	status int
	msg    string
}

func (e *adminError) Error() string { return e.msg }

// statusOf returns the admin API's status for err, or 0 if err is not an
// answer of the API.
func statusOf(err error) int {
	var e *adminError
	if errors.As(err, &e) {
		return e.status
	}
	return 0
}

// adminResponse is a successful answer: its status, ETag and raw JSON
// body.
type adminResponse struct {
	status int
	etag   string
	body   []byte
}

// call sends a request to the admin API: body, if not nil, as JSON;
// ifMatch, if set, as If-Match. Any answer but 2xx is an *adminError or a
// plain error that says what to do about it.
func (c *adminClient) call(ctx context.Context, method, path string, query url.Values, body any, ifMatch string) (adminResponse, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return adminResponse{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return adminResponse{}, err
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
		return adminResponse{}, c.unreachable(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminBody))
	if err != nil {
		return adminResponse{}, fmt.Errorf("reading the admin API's answer to %s %s: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return adminResponse{}, apiFailure(resp.StatusCode, b)
	}
	return adminResponse{status: resp.StatusCode, etag: resp.Header.Get("ETag"), body: b}, nil
}

// get calls GET path and decodes the answer into v; it returns the raw
// answer too, for --json.
func (c *adminClient) get(ctx context.Context, path string, query url.Values, v any) (adminResponse, error) {
	resp, err := c.call(ctx, http.MethodGet, path, query, nil, "")
	if err != nil {
		return resp, err
	}
	return resp, decodeAnswer(resp.body, v)
}

// send calls a changing method with a JSON body and decodes the answer
// into v.
func (c *adminClient) send(ctx context.Context, method, path string, body any, ifMatch string, v any) (adminResponse, error) {
	resp, err := c.call(ctx, method, path, nil, body, ifMatch)
	if err != nil {
		return resp, err
	}
	return resp, decodeAnswer(resp.body, v)
}

func decodeAnswer(b []byte, v any) error {
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
		msg = e.Error
	}
	switch {
	case status == http.StatusUnauthorized:
		msg = "the admin API refused the token: set STRANGLER_ADMIN_TOKEN to an admin token"
	case msg == "":
		// Not the admin API's JSON: a proxy, or not strangler at all.
		msg = fmt.Sprintf("the admin API answered %d %s (is --admin a strangler admin listener?)", status, http.StatusText(status))
	}
	return &adminError{status: status, msg: msg}
}

// unreachable says what to check when the admin API did not answer.
func (c *adminClient) unreachable(err error) error {
	base := c.base.Redacted()
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("cannot reach the admin API at %s: is strangler serve running, and is --admin right?", base)
	case errors.As(err, &dnsErr):
		return fmt.Errorf("cannot reach the admin API at %s: no such host %q; is --admin right?", base, dnsErr.Name)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Errorf("the admin API at %s did not answer within %v", base, adminTimeout)
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
