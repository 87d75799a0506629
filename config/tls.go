package config

import (
	"crypto/x509"
	"fmt"
	"path/filepath"

	"strangler/internal/filecap"
)

// resolve makes a relative path relative to the config file's folder, as
// ${file:…} placeholders are.
func (d *checker) resolve(path string) string {
	if path == "" || filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(d.dir, path)
}

// TLS is a listener's certificate and key, PEM files. The facade re-reads
// them when they change, so a renewed certificate needs no restart.
type TLS struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// UpstreamTLS says how to trust an https backend.
type UpstreamTLS struct {
	// CA is a PEM bundle of the authorities the backend's certificate must
	// chain to, instead of the system's.
	CA string `yaml:"ca,omitempty"`
	// ServerName is the name the certificate must carry, when it is not
	// the URL's host (a backend reached by address).
	ServerName string `yaml:"server_name,omitempty"`
}

// Files are the files the TLS settings read, for the reload watch.
func (t *TLS) files() []string { return []string{t.Cert, t.Key} }

// checkTLS resolves a listener TLS section's files against the config
// file's folder and reports them if they do not load.
func (d *checker) checkTLS(field string, t *TLS) {
	if t == nil {
		return
	}
	t.Cert, t.Key = d.resolve(t.Cert), d.resolve(t.Key)
	switch {
	case t.Cert == "" || t.Key == "":
		d.errorAt(field, "needs both cert and key")
	default:
		if _, err := filecap.KeyPair(t.Cert, t.Key); err != nil {
			d.errorAt(field, "certificate and key do not load: %v", err)
		}
	}
}

// checkUpstreamTLS reports a CA bundle that does not load.
func (d *checker) checkUpstreamTLS(field string, u *Upstream) {
	if u.TLS == nil {
		return
	}
	if u.URL.URL != nil && u.URL.Scheme != "https" {
		d.errorAt(field, "applies to https:// backends only")
	}
	if u.TLS.CA != "" {
		u.TLS.CA = d.resolve(u.TLS.CA)
		if _, _, err := LoadCA(u.TLS.CA); err != nil {
			d.errorAt(field+".ca", "%v", err)
		}
	}
}

// LoadCA reads a PEM bundle of certificate authorities, returning it as a
// pool and as the bytes read.
func LoadCA(path string) (*x509.CertPool, []byte, error) {
	data, err := filecap.Read(path, filecap.Limit)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, data, nil
}
