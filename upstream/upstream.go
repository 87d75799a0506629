// Package upstream owns how the facade reaches one backend: a tuned
// connection pool, the backend's timeout, clean 1xx responses, and the
// classification of what went wrong when a backend did not answer.
package upstream

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Upstream is one backend as the facade reaches it. It is safe for
// concurrent use and outlives configuration reloads that leave it unchanged.
type Upstream struct {
	// Name is the backend's name in metrics and logs: legacy or modern.
	Name string
	// URL is the backend's base URL.
	URL       *url.URL
	key       string
	timeout   time.Duration
	transport *http.Transport
	// direct, for a plain-http backend, sends the requests that need
	// nothing of the transport's machinery; nil for https.
	direct *direct
	// maxAge and swept bound the age of the transport's pooled
	// connections (see sweep); swept is when it last closed its idle
	// ones, in Unix nanoseconds.
	maxAge time.Duration
	swept  atomic.Int64
}

// Config says how to reach one backend.
type Config struct {
	// URL is the backend's base URL.
	URL *url.URL
	// Timeout bounds the time to connect and, once the request is sent,
	// to response headers.
	Timeout time.Duration
	// TLS configures https backends; nil trusts the system's authorities.
	TLS *tls.Config
	// Key identifies the configuration, so a reload that leaves it as it
	// was can keep this upstream and its warm connections.
	Key string
	// IdleTimeout bounds how long a pooled connection waits idle before it
	// is closed; 0 means DefaultIdleTimeout. A backend's own Keep-Alive:
	// timeout=N shortens it (see keepFor).
	IdleTimeout time.Duration
	// MaxConnAge bounds how long a pooled connection is used at all,
	// however busy it is: past it the connection is closed once its
	// exchange ends, and the next one dials, resolving the backend's name
	// again, so a move by DNS (blue/green, failover) is followed; 0 means
	// DefaultMaxConnAge.
	MaxConnAge time.Duration
	// Resolver resolves the backend's name at each dial; nil is the
	// system's.
	Resolver *net.Resolver
}

// maxResponseHead bounds the head of each response a backend sends, status
// line and header fields (and each 1xx response's), as the public listener
// bounds a request's head: past it the attempt fails (502). Parsed, a head
// takes about thirty times its size in memory when it is made of many
// short fields: at net/http's default of 10 MiB, one answer of 900,000
// fields took 290 MiB of the facade's heap and 4.6 s of CPU before it
// reached the client, so that a few such answers at once from a broken or
// hostile backend would take the whole facade down (found by the red
// team). Envoy's default is 60 KiB, nginx's 4 or 8 KiB (one buffer).
const maxResponseHead = 64 << 10

// DefaultIdleTimeout is how long a pooled backend connection may wait idle
// when the configuration and the backend say nothing (Go's transport's).
const DefaultIdleTimeout = 90 * time.Second

// DefaultMaxConnAge is how long a pooled backend connection is used when
// the configuration says nothing. Under steady traffic a connection is
// never idle long enough for the idle timeout to close it, and without a
// bound the facade would talk to a backend's old address for ever after
// its name moved (nginx's "resolves once"). A minute follows a move about
// as fast as the TTLs operators give failover records (30-60 s) and costs
// one handshake per connection per minute: at 50 requests a second on one
// connection, one request in 3,000 dials.
const DefaultMaxConnAge = time.Minute

// New returns an upstream for one backend.
func New(name string, c Config) *Upstream {
	timeout := c.Timeout
	idle := c.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	age := c.MaxConnAge
	if age <= 0 {
		age = DefaultMaxConnAge
	}
	dialer := &net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Resolver: c.Resolver}
	dial := (&lastKnown{dial: dialer.DialContext}).DialContext
	u := &Upstream{
		Name:    name,
		URL:     c.URL,
		key:     c.Key,
		timeout: timeout,
		maxAge:  age,
		transport: &http.Transport{
			TLSClientConfig: c.TLS,
			// HTTP/2 to an https backend multiplexes the facade's requests
			// over few connections; plain http stays HTTP/1.1.
			ForceAttemptHTTP2: true,
			Proxy:             nil, // a facade must reach the backend it was told to
			// Tapped, for restoreConnection.
			DialContext:    dialTapped(dial),
			DialTLSContext: dialTLSTapped(dial, c.TLS, timeout),
			// A proxy sees many concurrent requests to one host; Go's
			// default of 2 idle connections per host turns most of them
			// into new TCP handshakes. More than 256 idle ones mostly hold
			// memory (two goroutines and two buffers each) after a burst.
			MaxIdleConns:           256,
			MaxIdleConnsPerHost:    256,
			IdleConnTimeout:        idle,
			TLSHandshakeTimeout:    timeout,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: maxResponseHead,
			// Accept-Encoding must reach the backend as the client sent it,
			// and the body must come back as the backend sent it.
			DisableCompression: true,
		},
	}
	if c.URL.Scheme == "http" {
		port := c.URL.Port()
		if port == "" {
			port = "80"
		}
		u.direct = &direct{host: c.URL.Host, addr: net.JoinHostPort(c.URL.Hostname(), port),
			dial: dial, headerTimeout: timeout, idleTimeout: idle, maxAge: age}
	}
	return u
}

// Key is the configuration key the upstream was made with.
func (u *Upstream) Key() string { return u.key }

// Timeout is the backend's configured timeout.
func (u *Upstream) Timeout() time.Duration { return u.timeout }

// Target is the URL a request for in goes to on this backend: the base
// path joined with the request path, and the request query appended.
func (u *Upstream) Target(in *url.URL) *url.URL {
	out := *in
	out.Scheme, out.Host = u.URL.Scheme, u.URL.Host
	if u.URL.Path != "" && u.URL.Path != "/" {
		out.Path = strings.TrimSuffix(u.URL.Path, "/") + "/" + strings.TrimPrefix(in.Path, "/")
		// The escaped form too, from both sides: an encoded slash in the
		// base path (/tenant%2F7) or the request's stays encoded.
		out.RawPath = strings.TrimSuffix(u.URL.EscapedPath(), "/") + "/" + strings.TrimPrefix(in.EscapedPath(), "/")
	}
	return &out
}

// RoundTrip sends req, already addressed to this backend. 1xx responses
// reach any client trace on req with hop-by-hop headers removed. An answer
// whose status is no final answer to req fails with errNotFinal.
func (u *Upstream) RoundTrip(req *http.Request) (*http.Response, error) {
	req, finish := watchSend(req, u.timeout)
	resp, err := u.roundTrip(req)
	return final(req, resp, finish(err), u.timeout)
}

func (u *Upstream) roundTrip(req *http.Request) (*http.Response, error) {
	if singleUse(req) && !req.Close {
		req = req.WithContext(req.Context()) // a RoundTripper leaves req as it is
		req.Close = true
	}
	// The reverse proxy installs a trace taking 1xx responses on every
	// request; they are passed on as they come, within the bounds an
	// attempt may hold back: the transport stops counting 1xx responses
	// once a trace takes them, and a backend sending them without end
	// would have the client read them until the backend's timeout.
	outer := httptrace.ContextClientTrace(req.Context())
	relaying := outer != nil && outer.Got1xxResponse != nil
	if u.direct != nil {
		if u.direct.eligible(req) {
			// The relay stays on this goroutine's stack: the direct path
			// calls it and keeps nothing of it.
			r := relay{outer: outer}
			if !relaying {
				return u.direct.roundTrip(req, nil)
			}
			return u.direct.roundTrip(req, &r)
		}
		if !req.Close && req.Header["Upgrade"] == nil {
			// The transport pools a connection before its caller sees the
			// answer, so keepFor cannot be applied to it: a request the
			// direct path does not take (a large or streamed body) goes on
			// a connection of its own, never pooled, so that nothing a
			// backend writes late after its answer (a body after a 204)
			// is read as another request's answer, and no such request
			// is sent on a connection the backend is closing.
			req = req.WithContext(req.Context())
			req.Close = true
		}
	}
	if !relaying {
		return u.viaTransport(req)
	}
	trace := &httptrace.ClientTrace{Got1xxResponse: (&relay{outer: outer}).got1xx}
	return u.viaTransport(req.WithContext(httptrace.WithClientTrace(withoutTrace{req.Context()}, trace)))
}

// RoundTripHeld is RoundTrip with the attempt's 1xx responses held in i
// (see Informational) rather than passed on. On the direct path i takes
// them as they come; otherwise Hold puts it in req's context.
func (u *Upstream) RoundTripHeld(req *http.Request, i *Informational) (*http.Response, error) {
	req, finish := watchSend(req, u.timeout)
	var resp *http.Response
	var err error
	if u.direct != nil && !singleUse(req) && u.direct.eligible(req) {
		r := relay{held: i}
		resp, err = u.direct.roundTrip(req, &r)
	} else {
		resp, err = u.roundTrip(i.Hold(req))
	}
	return final(req, resp, finish(err), u.timeout)
}

// errNotFinal fails an attempt whose answer has a status that cannot end
// the exchange: net/http reads any three digits as a status, and below
// 100 there is none (RFC 9110 section 15); a 101 answers only a request
// that asked to switch protocols. The client then got its connection cut
// without a byte of an answer (net/http's server panics on a status below
// 100), a fallback route served that instead of falling back, a dual
// write was journaled as refused by the primary, which may have applied
// it, rather than as unknown, and a shadow copy counted as a mismatch
// (found by the red team). It is a 502, as for any answer that is not
// HTTP.
var errNotFinal = errors.New("the backend's answer has no final status (below 100, or 101 to a request that asked for no upgrade)")

// final is the outcome of sending req, resp or err, as callers get it:
// errNotFinal, resp's connection closed, when resp's status cannot end
// the exchange; else resp, its body of unknown length (chunked, the one
// that may have a trailer) read as chunkedBody, one of known length
// watched for reads that wait past timeout (see watchBody; a directBody
// sets a read deadline instead, which costs no allocation).
func final(req *http.Request, resp *http.Response, err error, timeout time.Duration) (*http.Response, error) {
	switch {
	case err != nil:
		return nil, err
	case resp.StatusCode < 100, resp.StatusCode == http.StatusSwitchingProtocols && req.Header["Upgrade"] == nil:
		resp.Body.Close()
		return nil, errNotFinal
	case resp.ContentLength < 0 && resp.Body != http.NoBody && resp.StatusCode != http.StatusSwitchingProtocols:
		resp.Body = &chunkedBody{ReadCloser: resp.Body, resp: resp}
	case resp.ContentLength > 0 && resp.Body != http.NoBody && timeout > 0:
		if b, ok := resp.Body.(*directBody); ok {
			b.timeout = timeout
		} else {
			resp.Body = &watchBody{ReadCloser: resp.Body, timeout: timeout}
		}
	}
	return resp, nil
}

// chunkedBody is a response body of unknown length that removes from its
// response's trailer, once the body is read to its end, the fields that
// cannot be trailer fields (see cleanTrailer), and whose errors carry no
// byte of the backend's (see Describe): net/http quotes a malformed
// trailer line in its error, which the reverse proxy logs (found by the
// red team: a backend's line reached the log at level debug).
type chunkedBody struct {
	io.ReadCloser
	resp *http.Response
}

func (b *chunkedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == io.EOF:
		// The trailer is read with the body's end, before its io.EOF.
		cleanTrailer(b.resp.Trailer)
	case err != nil:
		err = Describe(err)
	}
	return n, err
}

// relay passes an attempt's 1xx responses on to the client trace outer,
// hop-by-hop fields removed, as long as budget has room for them; or,
// when held is set, holds them there, also without those fields.
type relay struct {
	outer  *httptrace.ClientTrace
	held   *Informational
	budget budget
}

func (r *relay) got1xx(code int, h textproto.MIMEHeader) error {
	if r.held != nil {
		// Held ones lose them too: they reached a fallback route's
		// client, Connection and the fields it named (found by the red
		// team).
		return r.held.hold(code, withoutHopByHop(h))
	}
	if err := r.budget.take(h); err != nil {
		return err
	}
	return r.outer.Got1xxResponse(code, withoutHopByHop(h))
}

// singleUse reports whether req's connection must carry no other request
// after it, because bytes the backend may leave on it would be read as
// the next one (found by the red team):
//   - a body on a method that defines no meaning for one (GET, HEAD,
//     OPTIONS, DELETE; RFC 9110 section 9.3): a backend that ignores it
//     reads it as its next request, and the next client on the connection
//     reads that request's answer (a CL.0 desync, which a client can fill
//     with any request it likes);
//   - HEAD: a backend that sends a body anyway, a moment after the head,
//     has it read as the next client's answer; the look at an idle
//     connection before reuse only sees bytes that are already there.
//
// Such a request is sent with Connection: close, and its connection is
// closed after it, so that nothing left on it is read as an answer. Both
// are rare enough for the new connection to cost nothing noticeable.
func singleUse(req *http.Request) bool {
	switch req.Method {
	case http.MethodHead:
		return true
	case http.MethodGet, http.MethodOptions, http.MethodDelete:
		return req.Body != nil && req.Body != http.NoBody && req.ContentLength != 0
	}
	return false
}

// keepFor is the one place that says whether the connection that carried
// resp, read to its end, may carry another request, and for how long it
// may wait idle in the pool first; 0: it may not, it is closed.
//
// It may not when the backend said so (Connection: close, or Keep-Alive
// max=0), nor after an answer that by its status or method has no body
// (204, 304, a HEAD's): a backend that writes a body anyway (a framework
// that does not know the rule) writes it after the head, in a write of
// its own, which may come after the next request was sent on the
// connection; that request then read it as its answer (found by the red
// team: another client's GET read "SMUGGLED", and the connection stayed
// one answer behind from then on; a 204 to a PUT did the same to the next
// write). The look at an idle connection before reuse only sees bytes
// that have arrived. Such answers are rare enough for a new connection to
// cost nothing noticeable.
//
// Otherwise it may wait idle for idle (the backend's idle_timeout), or
// less when the backend states its own keep-alive timeout (Keep-Alive:
// timeout=N, as Apache and Node.js send): a request sent on a connection
// the backend is closing at that moment is lost, and a write cannot be
// sent again, so the connection is given up a margin before the backend
// would (half of N, at most a second), as undici does.
func keepFor(resp *http.Response, idle time.Duration) time.Duration {
	switch {
	case resp.Close:
		return 0
	case resp.StatusCode == http.StatusNoContent, resp.StatusCode == http.StatusNotModified:
		return 0
	case resp.Request != nil && resp.Request.Method == http.MethodHead:
		return 0
	}
	for _, v := range resp.Header["Keep-Alive"] {
		for _, param := range strings.Split(v, ",") {
			name, value, _ := strings.Cut(param, "=")
			n, err := strconv.Atoi(textproto.TrimString(value))
			if err != nil || n < 0 {
				continue
			}
			switch strings.ToLower(textproto.TrimString(name)) {
			case "max":
				// The requests the backend still takes on the connection.
				if n == 0 {
					return 0
				}
			case "timeout":
				stated := time.Duration(n) * time.Second
				if limit := stated - min(stated/2, time.Second); limit < idle {
					idle = limit
				}
			}
		}
	}
	return idle
}

// NewRequest builds a request the facade sends on its own (a shadow copy,
// a dual write's delivery) rather than one it proxies; the body may be
// sent again, by the transport or by the caller.
func NewRequest(ctx context.Context, method string, u *url.URL, h http.Header, body []byte) *http.Request {
	req := (&http.Request{
		Method:     method,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     h,
		Host:       u.Host,
	}).WithContext(ctx)
	if len(body) > 0 {
		req.Body = Held(body)
		req.ContentLength = int64(len(body))
		req.GetBody = func() (io.ReadCloser, error) { return Held(body), nil }
	}
	return req
}

// Held is a request body held whole in memory, b: no read of it waits,
// so the direct path writes it with the request's head in one write
// (headWithBody). Closing it does nothing.
func Held(b []byte) io.ReadCloser { return heldBody{bytes.NewReader(b)} }

// heldBody is Held's body.
type heldBody struct{ *bytes.Reader }

func (heldBody) Close() error { return nil }

// KeepOpen is body for a request the transport may close when it fails
// to send it, with body left open: body itself when Held made it (its
// Close does nothing, and wrapped it would go out in two writes), else
// body under io.NopCloser.
func KeepOpen(body io.ReadCloser) io.ReadCloser {
	if _, ok := body.(heldBody); ok {
		return body
	}
	return io.NopCloser(body)
}

// Informational holds back the 1xx responses of an attempt whose outcome
// is not decided yet, so that nothing reaches the client before the
// facade knows which backend will answer.
type Informational struct {
	codes   []int
	headers []textproto.MIMEHeader
	budget  budget
}

// Bounds on the 1xx responses of one attempt, held back or passed on: a
// backend sending them without end would otherwise fill the facade's
// memory, or have its client read them until that timeout (a client on
// Go's net/http gives up once they add up to 10 MiB, with an error of its
// own). Past them the attempt fails with ErrInformationalFlood (502).
const (
	maxHeldInformational     = 16
	maxHeldInformationalSize = 64 << 10
)

// budget counts an attempt's 1xx responses against the bounds.
type budget struct {
	n    int
	size int // of the headers' names and values
}

// take counts one more 1xx response with header h, or fails when it is
// one too many.
func (b *budget) take(h textproto.MIMEHeader) error {
	for k, vs := range h {
		for _, v := range vs {
			b.size += len(k) + len(v)
		}
	}
	if b.n == maxHeldInformational || b.size > maxHeldInformationalSize {
		return ErrInformationalFlood
	}
	b.n++
	return nil
}

// ErrInformationalFlood fails an attempt whose backend sent more 1xx
// responses than an answer can be held back with.
var ErrInformationalFlood = errors.New("the backend sent more informational (1xx) responses than the facade holds back")

// Hold returns req with its client trace replaced by one that collects 1xx
// responses in i, up to the bounds above. The trace points to i.
func (i *Informational) Hold(req *http.Request) *http.Request {
	trace := &httptrace.ClientTrace{Got1xxResponse: i.hold}
	return req.WithContext(httptrace.WithClientTrace(withoutTrace{req.Context()}, trace))
}

func (i *Informational) hold(code int, h textproto.MIMEHeader) error {
	if err := i.budget.take(h); err != nil {
		return err
	}
	i.codes = append(i.codes, code)
	i.headers = append(i.headers, h)
	return nil
}

// Release forwards the held 1xx responses to the client trace on req.
func (i *Informational) Release(req *http.Request) {
	outer := httptrace.ContextClientTrace(req.Context())
	if outer == nil || outer.Got1xxResponse == nil {
		return
	}
	for k, code := range i.codes {
		if outer.Got1xxResponse(code, i.headers[k]) != nil {
			return
		}
	}
}

// sweep closes the transport's idle connections when maxAge has passed
// since it last did, so that the next requests dial, resolving the
// backend's name again. The transport has no bound on a connection's age
// and tells nothing of a connection's when it pools it: a connection busy
// at every sweep (HTTP/2 with requests always in flight) keeps its
// address until it is idle at one; the direct path's are bounded exactly.
func (u *Upstream) sweep() {
	now := time.Now().UnixNano()
	last := u.swept.Load()
	if last == 0 {
		u.swept.CompareAndSwap(0, now) // the first connections are new
		return
	}
	if now-last >= int64(u.maxAge) && u.swept.CompareAndSwap(last, now) {
		u.transport.CloseIdleConnections()
	}
}

// CloseIdleConnections closes pooled connections, for an upstream a reload
// replaced.
func (u *Upstream) CloseIdleConnections() {
	u.transport.CloseIdleConnections()
	if u.direct != nil {
		u.direct.closeIdle()
	}
}

// withoutTrace hides client traces installed further up the context, so the
// trace installed on top of it is the only one the transport calls.
// httptrace composes traces and offers no way to remove one.
type withoutTrace struct{ context.Context }

func (c withoutTrace) Value(key any) any {
	v := c.Context.Value(key)
	if _, isTrace := v.(*httptrace.ClientTrace); isTrace {
		return nil
	}
	return v
}

// hopByHop reports whether k, a canonical field name, is one of the RFC
// 9110 section 7.6.1 connection-specific fields, or one a proxy drops as
// such (Proxy-Connection, Keep-Alive).
func hopByHop(k string) bool {
	switch k {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}

// withoutHopByHop copies h without hop-by-hop fields, for a 1xx answer
// passed on to the client.
func withoutHopByHop(h textproto.MIMEHeader) textproto.MIMEHeader {
	out := http.Header(h).Clone()
	RemoveHopByHop(out)
	return textproto.MIMEHeader(out)
}

// RemoveHopByHop deletes hop-by-hop fields from h, a header with canonical
// names, including those its Connection field names, for a message the
// facade sends on. One pass over h: deleting each known name apart
// canonicalised it again, twice an exchange.
func RemoveHopByHop(h http.Header) { RemoveHopByHopAnd(h, nil) }

// RemoveHopByHopAnd is RemoveHopByHop deleting the fields drop reports
// too (drop may be nil), in the same pass.
func RemoveHopByHopAnd(h http.Header, drop func(name string) bool) {
	named := nominated(h)
	for k := range h {
		if hopByHop(k) || slices.Contains(named, k) || drop != nil && drop(k) {
			delete(h, k)
		}
	}
}

// CloneEndToEnd returns a copy of h, a header with canonical names,
// without the fields RemoveHopByHop deletes and those drop reports, with
// room for extra more fields: what Clone, RemoveHopByHop and a pass of
// drop's deletions leave, in one pass over h. Each value is a slice of its
// own capacity, all in one allocation, as Clone makes them.
func CloneEndToEnd(h http.Header, extra int, drop func(name string) bool) http.Header {
	named := nominated(h)
	n := 0
	for _, vs := range h {
		n += len(vs)
	}
	values := make([]string, n)
	out := make(http.Header, len(h)+extra)
	for k, vs := range h {
		switch {
		case hopByHop(k), slices.Contains(named, k), drop(k):
		case vs == nil:
			out[k] = nil
		default:
			n := copy(values, vs)
			out[k] = values[:n:n]
			values = values[n:]
		}
	}
	return out
}

// RemoveNominated deletes from h, a client's request header with
// canonical names, the fields its Connection field names (RFC 9110 section
// 7.6.1) that are not hop-by-hop ones: no backend receives them, so the
// facade must not decide on them either. It leaves the Connection field
// and the hop-by-hop fields, which an upgrade needs, to RemoveHopByHop.
func RemoveNominated(h http.Header) {
	for _, k := range nominated(h) {
		delete(h, k)
	}
}

// nominated returns the canonical names of the fields h's Connection field
// names, other than hop-by-hop ones; nil if there is no Connection field.
func nominated(h http.Header) []string {
	var named []string
	for _, v := range h["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(name)); name != "" && !hopByHop(name) {
				named = append(named, name)
			}
		}
	}
	return named
}

// Failure says how a request to a backend failed.
type Failure struct {
	// Canceled: the client went away; nobody is left to answer.
	Canceled bool
	// Timeout: the backend did not connect or answer within its timeout.
	Timeout bool
	// NotSent: connecting failed, so the backend never saw the request.
	NotSent bool
}

// Kind names the failure, as spans report it in error.type: canceled,
// timeout, connect_failed, or "" for any other.
func (f Failure) Kind() string {
	switch {
	case f.Canceled:
		return "canceled"
	case f.Timeout:
		return "timeout"
	case f.NotSent:
		return "connect_failed"
	}
	return ""
}

// Classify says how err, returned by RoundTrip for a request whose context
// is ctx, failed.
func Classify(ctx context.Context, err error) Failure {
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return Failure{Canceled: true}
	}
	var op *net.OpError
	var ne net.Error
	return Failure{
		Timeout: errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout(),
		NotSent: errors.As(err, &op) && op.Op == "dial",
	}
}

// errNotHTTP stands for net/http's error about an answer it could not
// parse, which quotes the bytes it read.
var errNotHTTP = errors.New("the backend's answer is not valid HTTP")

// Describe is what logs, spans and the repair queue may show of err, an
// error of RoundTrip: without the request's URL, which net/http's client
// puts in its errors (the path may carry patient identifiers), and
// without the backend's bytes that net/http quotes when they are not HTTP
// (a status or header line, a Content-Length; stray bytes of an earlier
// answer may be a patient's record). errors.Is and errors.As still see
// the error it stands for.
func Describe(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if err == nil || errors.As(err, &ne) {
		return err
	}
	var pe textproto.ProtocolError
	if errors.As(err, &pe) || strings.ContainsAny(err.Error(), `"`) {
		return notHTTPError{err}
	}
	return err
}

// notHTTPError is an error whose text quoted a backend's bytes.
type notHTTPError struct{ err error }

func (e notHTTPError) Error() string { return errNotHTTP.Error() }
func (e notHTTPError) Unwrap() error { return e.err }
