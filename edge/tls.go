package edge

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"strangler/internal/filecap"
)

// Certificate serves a listener's certificate from its PEM files and reads
// them again when they change, so a renewed certificate (cert-manager, a
// mounted secret, certbot) takes effect on the next handshake without a
// restart. A change that does not load is logged and the previous
// certificate keeps serving.
type Certificate struct {
	certFile, keyFile string
	log               *slog.Logger
	now               func() time.Time

	mu      sync.Mutex
	current *tls.Certificate
	stamp   string // the files' sizes and modification times
	checked time.Time
}

// recheckInterval bounds how often a handshake looks at the files.
const recheckInterval = time.Second

// LoadCertificate loads the certificate and key files.
func LoadCertificate(certFile, keyFile string, log *slog.Logger) (*Certificate, error) {
	c := &Certificate{certFile: certFile, keyFile: keyFile, log: log, now: time.Now}
	stamp, err := c.stampOf()
	if err != nil {
		return nil, err
	}
	cert, err := filecap.KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	c.current, c.stamp, c.checked = &cert, stamp, c.now()
	return c, nil
}

func (c *Certificate) stampOf() (string, error) {
	var stamp string
	for _, f := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", fmt.Errorf("tls: %w", err)
		}
		stamp += fmt.Sprintf("%d/%d ", fi.Size(), fi.ModTime().UnixNano())
	}
	return stamp, nil
}

// GetCertificate is for tls.Config.GetCertificate.
func (c *Certificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); now.Sub(c.checked) >= recheckInterval {
		c.checked = now
		if stamp, err := c.stampOf(); err == nil && stamp != c.stamp {
			cert, err := filecap.KeyPair(c.certFile, c.keyFile)
			if err != nil {
				// Often a renewal caught between writing the two files:
				// the next look will see both.
				c.log.Warn("a changed certificate does not load; the previous one keeps serving", "cert", c.certFile, "error", err)
			} else {
				c.current, c.stamp = &cert, stamp
				c.log.Info("certificate reloaded", "cert", c.certFile)
			}
		}
	}
	return c.current, nil
}

// TLSConfig is a listener's TLS: version 1.2 at least, the certificate
// from c. net/http adds HTTP/2 and HTTP/1.1 to it when serving.
func TLSConfig(c *Certificate) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: c.GetCertificate}
}
