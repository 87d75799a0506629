package testkit

import (
	"crypto/tls"
	"io"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// DialH2 opens a TLS connection to addr that negotiates HTTP/2 (cfg's
// NextProtos set to h2; nil trusts any certificate), bounds it to
// deadline from now, and writes the client preface: the connection is
// ready for a framer's SETTINGS. It is closed when the test ends.
func DialH2(t testing.TB, addr string, cfg *tls.Config, deadline time.Duration) *tls.Conn {
	t.Helper()
	if cfg == nil {
		cfg = &tls.Config{InsecureSkipVerify: true}
	}
	cfg = cfg.Clone()
	cfg.NextProtos = []string{http2.NextProtoTLS}
	conn, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if p := conn.ConnectionState().NegotiatedProtocol; p != http2.NextProtoTLS {
		t.Fatalf("%s negotiated %q, want h2", addr, p)
	}
	conn.SetDeadline(time.Now().Add(deadline))
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	return conn
}
