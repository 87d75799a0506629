// Package pgdsn checks a postgres:// URL the way the PostgreSQL driver
// (pgx) reads it when the store or the backfill connects, so that `config
// check` and a reload refuse what a start would. It is apart from package
// dsn, which the request path links, so that only what connects to
// PostgreSQL links the driver.
package pgdsn

import (
	"fmt"
	"net/url"
	"os"

	"github.com/jackc/pgx/v5/pgconn"

	"strangler/internal/dsn"
	"strangler/internal/filecap"
)

// fileParams are the URL parameters naming a file the driver reads while
// it parses the URL: each is read first with filecap's bound, so that one
// naming /dev/zero or a named pipe is refused by name instead of read
// until memory runs out. One that is not there is left to the driver,
// which ignores a missing passfile and refuses a missing certificate.
var fileParams = []string{"sslrootcert", "sslcert", "sslkey", "passfile", "servicefile"}

// Check parses raw as pgx does before it connects, without connecting:
// an unknown sslmode, a port out of range, a connect_timeout that is no
// number, a certificate that is not there. The error never holds the
// password.
func Check(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return dsn.RedactError(err, raw)
	}
	q := u.Query()
	for _, p := range fileParams {
		path := q.Get(p)
		// sslrootcert=system names the system's authorities, no file.
		if path == "" || p == "sslrootcert" && path == "system" {
			continue
		}
		if _, err := os.Stat(path); err == nil {
			if _, err := filecap.Read(path, filecap.Limit); err != nil {
				return dsn.RedactError(fmt.Errorf("%s: %w", p, err), raw)
			}
		}
	}
	if _, err := pgconn.ParseConfig(raw); err != nil {
		return dsn.RedactError(err, raw)
	}
	return nil
}
