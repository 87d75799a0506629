package edge

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"strangler/internal/testcert"
)

func TestTLSListener(t *testing.T) {
	ca := testcert.NewAuthority(t)
	certFile, keyFile := ca.Files("server")
	ca.Issue(t, 100, certFile, keyFile, "127.0.0.1", "localhost")
	cert, err := LoadCertificate(certFile, keyFile, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	cert.now = func() time.Time { return clock }

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}), TLSConfig: TLSConfig(cert), ErrorLog: log.New(io.Discard, "", 0)}
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	pem, _ := os.ReadFile(ca.CAFile)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	dial := func(t *testing.T, maxVersion uint16) (*tls.Conn, error) {
		t.Helper()
		return tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: pool, MaxVersion: maxVersion, NextProtos: []string{"h2", "http/1.1"}})
	}

	t.Run("HTTP/2 is negotiated", func(t *testing.T) {
		conn, err := dial(t, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if got := conn.ConnectionState().NegotiatedProtocol; got != "h2" {
			t.Errorf("ALPN chose %q, want h2", got)
		}
	})
	t.Run("TLS 1.1 is refused", func(t *testing.T) {
		if conn, err := dial(t, tls.VersionTLS11); err == nil {
			conn.Close()
			t.Error("a TLS 1.1 handshake succeeded")
		}
	})
	t.Run("a renewed certificate is served without a restart", func(t *testing.T) {
		ca.Issue(t, 200, certFile, keyFile, "127.0.0.1", "localhost")
		clock = clock.Add(2 * recheckInterval)
		conn, err := dial(t, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if got := conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != 200 {
			t.Errorf("serial %d, want the renewed certificate's 200", got)
		}
	})
	t.Run("a renewal that does not load keeps the old certificate", func(t *testing.T) {
		os.WriteFile(keyFile, []byte("not a key"), 0o600)
		clock = clock.Add(2 * recheckInterval)
		conn, err := dial(t, 0)
		if err != nil {
			t.Fatalf("handshake after a broken renewal: %v", err)
		}
		defer conn.Close()
		if got := conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); got != 200 {
			t.Errorf("serial %d, want 200 still", got)
		}
	})
}
