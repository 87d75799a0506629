// Package mysqldsn turns a mysql:// URL, as configuration writes a legacy
// MySQL or MariaDB database, into the DSN the MySQL driver takes. It is
// apart from package dsn, which the configuration links, so that only
// what connects to MySQL links the driver.
package mysqldsn

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/go-sql-driver/mysql"

	"strangler/internal/dsn"
)

// DriverDSN converts a mysql:// URL to the form
// github.com/go-sql-driver/mysql expects; query parameters pass on as
// driver parameters, and ?socket=/path connects through a Unix socket.
func DriverDSN(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "mysql" && u.Scheme != "mariadb" {
		return "", fmt.Errorf("invalid MySQL URL; write it like mysql://user:pass@host:3306/db")
	}
	cfg := mysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net, cfg.Addr = "tcp", u.Host
	if u.Port() == "" {
		cfg.Addr = u.Host + ":3306"
	}
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	q := u.Query()
	if sock := q.Get("socket"); sock != "" {
		cfg.Net, cfg.Addr = "unix", sock
		q.Del("socket")
	}
	// Options such as tls or timeout are parsed by the driver itself, so
	// that every one it knows works here too.
	if len(q) > 0 {
		opts, err := mysql.ParseDSN("/?" + q.Encode())
		if err != nil {
			return "", fmt.Errorf("invalid MySQL URL parameters: %w", dsn.RedactError(err, raw))
		}
		opts.User, opts.Passwd, opts.Net, opts.Addr, opts.DBName = cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName
		cfg = opts
	}
	return cfg.FormatDSN(), nil
}
