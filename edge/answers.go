package edge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"strangler/internal/uuid"
)

// ServerAnswers turns the answers Go's HTTP server writes by itself,
// before any handler runs, into refusals like the facade's own: the same
// status, a JSON body saying what is wrong, Connection: close (the server
// closes after each), a count and one log line. net/http answers these in
// plain text and neither counts nor logs them: a request head it cannot
// parse (400), a head over MaxHeaderBytes (431), a Transfer-Encoding it
// does not support (501), an HTTP version other than 1.x (505), an Expect
// other than 100-continue (417), and plain HTTP sent to a TLS listener
// (400). It offers no hook for them (Go 1.26), so ServerAnswers watches
// what the server writes to each connection.
//
// A write is the server's own answer when it starts with "HTTP/1." while
// no handler is serving the connection: from the moment a handler starts
// until the server reports the connection idle (after it flushed the
// handler's answer), every write is the handler's, whatever its bytes, so
// no handler's answer (a backend's plain-text 400 passed through
// included) is ever taken for one. Beneath TLS no handler is ever seen;
// there every write is a TLS record, whose first byte is never 'H', except
// the server's answer to plain HTTP.
//
// Nothing of the request (its target, header names or values) is logged
// or echoed: the reason is one of a fixed set.
type ServerAnswers struct {
	// Listener names the listener in log lines ("public", "admin",
	// "metrics").
	Listener string
	// Count, if not nil, counts one refusal by its reason.
	Count func(reason string)
	Log   *slog.Logger
}

// The reasons of the server's own refusals, as counted and logged.
const (
	ReasonMalformed        = "malformed"         // 400: a request line or header line net/http cannot parse
	ReasonHost             = "host"              // 400: a missing or malformed Host
	ReasonHeader           = "header"            // 400: a header name that is no token, a value with a control character
	ReasonHeadTooLarge     = "head_too_large"    // 431
	ReasonTransferEncoding = "transfer_encoding" // 501
	ReasonHTTPVersion      = "http_version"      // 505
	ReasonExpect           = "expect"            // 417
	ReasonNotTLS           = "not_tls"           // 400: plain HTTP on a TLS listener
)

// ServerReasons lists every reason, so that a counter can show each at 0.
func ServerReasons() []string {
	return []string{ReasonMalformed, ReasonHost, ReasonHeader, ReasonHeadTooLarge, ReasonTransferEncoding,
		ReasonHTTPVersion, ReasonExpect, ReasonNotTLS}
}

// Install makes srv's own answers JSON refusals: it wraps srv's Handler,
// ConnContext and ConnState. Serve srv on a listener passed through
// [ServerAnswers.Listen], beneath TLS and [TrackFraming] if srv uses them.
func (a *ServerAnswers) Install(srv *http.Server) {
	next, connContext, connState := srv.Handler, srv.ConnContext, srv.ConnState
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(answerKey{}).(*answerConn); ok {
			c.serving.Store(true)
		}
		next.ServeHTTP(w, r)
	})
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if connContext != nil {
			ctx = connContext(ctx, c)
		}
		if ac := answerConnOf(c); ac != nil {
			ctx = context.WithValue(ctx, answerKey{}, ac)
		}
		return ctx
	}
	srv.ConnState = func(c net.Conn, s http.ConnState) {
		// The server reports idle once it flushed the last handler's
		// answer and before it reads the next request.
		if ac := answerConnOf(c); ac != nil && s == http.StateIdle {
			ac.serving.Store(false)
		}
		if connState != nil {
			connState(c, s)
		}
	}
}

// Listen wraps l so that the server's own answers on its connections
// become JSON refusals; see [ServerAnswers.Install].
func (a *ServerAnswers) Listen(l net.Listener) net.Listener {
	return answersListener{l, a}
}

type answersListener struct {
	net.Listener
	a *ServerAnswers
}

func (l answersListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &answerConn{Conn: c, a: l.a}, nil
}

type answerKey struct{}

// answerConnOf finds the answerConn beneath c, the connection the server
// reads: itself or wrapped by TrackFraming. Over TLS it finds none, as no
// handler's answer is written to it in plain.
func answerConnOf(c net.Conn) *answerConn {
	for {
		switch v := c.(type) {
		case *answerConn:
			return v
		case *trackedConn:
			c = v.Conn
		default:
			return nil
		}
	}
}

// answerConn replaces the server's own answers written to it.
type answerConn struct {
	net.Conn
	a *ServerAnswers
	// serving is set while a handler's answer may be written: from the
	// handler's start until the server reports the connection idle.
	serving atomic.Bool
}

func (c *answerConn) Write(p []byte) (int, error) {
	if c.serving.Load() || !bytes.HasPrefix(p, []byte("HTTP/1.")) {
		return c.Conn.Write(p)
	}
	code, reason, msg := refusalOf(p)
	if code == 0 {
		return c.Conn.Write(p) // not a refusal: net/http's 200 to "OPTIONS *"
	}
	id := uuid.New()
	if c.a.Count != nil {
		c.a.Count(reason)
	}
	c.a.Log.LogAttrs(context.Background(), slog.LevelInfo, "request refused",
		slog.String("listener", c.a.Listener),
		slog.Int("status", code),
		slog.String("reason", reason),
		slog.String("request_id", id))
	if _, err := c.Conn.Write(jsonAnswer(code, msg, id)); err != nil {
		return 0, err
	}
	// The server reads its answer as written; it closes the connection next.
	return len(p), nil
}

// ReadFrom keeps the kernel's splice for a handler's answer (net/http
// calls it only from a handler's response writer).
func (c *answerConn) ReadFrom(r io.Reader) (int64, error) {
	return io.Copy(c.Conn, r)
}

// CloseWrite lets net/http half-close after an error answer.
func (c *answerConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// refusalOf reads p, an answer of the server's, for its status, and the
// reason and message of the refusal it stands for; code is 0 for a status
// below 400. net/http's own words (after "400 Bad Request: " on the status
// line, or the body of its answer to plain HTTP on a TLS listener) are
// from a fixed set; they are matched, never passed on.
func refusalOf(p []byte) (code int, reason, msg string) {
	line, _, _ := bytes.Cut(p, []byte("\r\n"))
	_, status, _ := bytes.Cut(line, []byte(" "))
	if len(status) < 3 {
		return 0, "", ""
	}
	code, err := strconv.Atoi(string(status[:3]))
	if err != nil || code < 400 || code > 599 {
		return 0, "", ""
	}
	_, text, _ := bytes.Cut(status, []byte(": "))
	reason, msg = refusalText(code, string(text), bytes.Contains(p, []byte("\r\n\r\nClient sent an HTTP request to an HTTPS server")))
	return code, reason, msg
}

func refusalText(code int, text string, plainOnTLS bool) (reason, msg string) {
	switch code {
	case http.StatusRequestHeaderFieldsTooLarge:
		return ReasonHeadTooLarge, "the request head (request line and header fields) is larger than this listener accepts"
	case http.StatusNotImplemented:
		return ReasonTransferEncoding, "the Transfer-Encoding is not supported: send one chunked, or a Content-Length"
	case http.StatusHTTPVersionNotSupported:
		return ReasonHTTPVersion, "the HTTP version is not supported: send HTTP/1.1 (or HTTP/2 over TLS)"
	case http.StatusExpectationFailed:
		return ReasonExpect, "the Expect header can only be 100-continue"
	case http.StatusBadRequest:
		if plainOnTLS {
			return ReasonNotTLS, "this listener speaks HTTPS; the request came in plain HTTP"
		}
	default:
		return ReasonMalformed, "the request cannot be read: " + http.StatusText(code)
	}
	switch text {
	case "missing required Host header":
		return ReasonHost, "an HTTP/1.1 request needs a Host header"
	case "malformed Host header":
		return ReasonHost, "the Host header is not a valid host"
	case "invalid header name":
		return ReasonHeader, "a header name holds a character other than a token's (such as a space)"
	case "invalid header value":
		return ReasonHeader, "a header value holds a control character"
	}
	return ReasonMalformed, "the request line or a header line is malformed: a method that is no token, " +
		"a request-target that is not a path starting with / (or holds a raw control character or an invalid percent-encoding), " +
		"two Host headers, or a header line without a colon"
}

// jsonAnswer is the whole answer the client gets: the body is the
// facade's error body, as the router writes it.
func jsonAnswer(code int, msg, id string) []byte {
	body, _ := json.Marshal(struct {
		Error     string `json:"error"`
		RequestID string `json:"request_id"`
	}{msg, id})
	body = append(body, '\n')
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nConnection: close\r\n"+
		"Date: %s\r\nContent-Length: %d\r\n\r\n", code, http.StatusText(code), time.Now().UTC().Format(http.TimeFormat), len(body))
	b.Write(body)
	return b.Bytes()
}
