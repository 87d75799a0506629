package dsn

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

func TestRedactHidesThePasswordWhereverItSits(t *testing.T) {
	for _, c := range []struct{ name, in, want string }{
		{"a URL's userinfo", "postgres://app:s3cret@db:5432/strangler", "postgres://app:xxxxx@db:5432/strangler"},
		{"a MySQL URL's userinfo", "mysql://legacy:s3cret@mariadb:3306/legacy", "mysql://legacy:xxxxx@mariadb:3306/legacy"},
		{"an escaped @ in the password", "postgres://app:p%40ss@db/x", "postgres://app:xxxxx@db/x"},
		{"an unescaped @ in the password", "postgres://app:p@ss@db/x", "postgres://app:xxxxx@db/x"},
		{"an unescaped / in the password", "postgres://app:pa/ss@db/x", "postgres://app:xxxxx@db/x"},
		{"an unescaped # and ? in the password", "postgres://app:p#a?ss@db/x?sslmode=disable", "postgres://app:xxxxx@db/x?sslmode=disable"},
		{"an unescaped & in a query password", "postgres://db/x?password=a&b/c&sslmode=disable", "postgres://db/x?password=xxxxx&sslmode=disable"},
		{"a password in the query", "postgres://app@db/x?sslmode=disable&password=s3cret", "postgres://app@db/x?sslmode=disable&password=xxxxx"},
		{"an upper-case password key", "postgres://db/x?PASSWORD=s3cret", "postgres://db/x?PASSWORD=xxxxx"},
		{"a percent-encoded password key", "postgres://db/x?pass%77ord=s3cret&a=b", "postgres://db/x?pass%77ord=xxxxx&a=b"},
		{"an sslpassword in the query", "postgres://db/x?sslpassword=s3cret", "postgres://db/x?sslpassword=xxxxx"},
		{"both, and a # in the query password", "postgres://u:one@db/x?password=two#frag", "postgres://u:xxxxx@db/x?password=xxxxx"},
		{"a # in the userinfo password", "postgres://app:00#0@db:5432/x", "postgres://app:xxxxx@db:5432/x"},
		{"an @ and a password in a query without a path", "postgres://db?user=a:b@c&password=s3cret", "postgres://db?user=a:xxxxx@c&password=xxxxx"},
		{"several hosts", "postgres://app:s3cret@h1:5432,h2:5433/x?target_session_attrs=read-write", "postgres://app:xxxxx@h1:5432,h2:5433/x?target_session_attrs=read-write"},
		{"an @ in a query value", "postgres://db/x?application_name=a@b", "postgres://db/x?application_name=a@b"},
		{"an @ in a query value after a port hides too much", "postgres://db:5432/x?application_name=a@b", "postgres://db:xxxxx@b"},
		{"an unescaped / before the @", "postgres://app:000/@db:5432/x", "postgres://app:xxxxx@db:5432/x"},
		{"key=value", "host=db user=app password=s3cret dbname=x", "host=db user=app password=xxxxx dbname=x"},
		{"key=value, quoted with spaces", "host=db password='it\\'s a secret' dbname=x", "host=db password=xxxxx dbname=x"},
		{"key=value, spaces around =", "host=db password = s3cret dbname=x", "host=db password = xxxxx dbname=x"},
		{"key=value, sslpassword", "sslpassword=s3cret host=db", "sslpassword=xxxxx host=db"},
		{"key=value, a key without =", "host=db password s3cret", "host=db password xxxxx"},
		{"a MySQL driver DSN", "legacy:s3cret@tcp(mariadb:3306)/legacy?parseTime=true", "legacy:xxxxx@tcp(mariadb:3306)/legacy?parseTime=true"},
		{"a MySQL driver DSN, @ and : in the password", "legacy:s3:c@ret@unix(/run/mysqld.sock)/legacy", "legacy:xxxxx@unix(/run/mysqld.sock)/legacy"},
		{"a MySQL driver DSN without a password", "root@tcp(127.0.0.1:3306)/test", "root@tcp(127.0.0.1:3306)/test"},
		{"no password", "postgres://app@db/x?sslmode=disable", "postgres://app@db/x?sslmode=disable"},
		{"an embedded store", "sqlite:/var/lib/str@ngler:x/state.db", "sqlite:/var/lib/str@ngler:x/state.db"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := Redact(c.in); got != c.want {
				t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
			}
		})
	}
}

// TestRedactErrorHidesWhatDriversEcho feeds malformed addresses to the
// parsers strangler uses and checks that no part of the password survives
// in the message, however the parser quoted or re-encoded it.
func TestRedactErrorHidesWhatDriversEcho(t *testing.T) {
	const secret = "Tr0ub4dor&3/x"
	enc := url.QueryEscape(secret)
	parsers := map[string]func(string) error{
		"net/url": func(s string) error { _, err := url.Parse(s); return err },
		"pgx":     func(s string) error { _, err := pgx.ParseConfig(s); return err },
		"mysql":   func(s string) error { _, err := mysql.ParseDSN(s); return err },
	}
	for _, c := range []struct{ parser, dsn string }{
		{"net/url", "postgres://app:" + secret + "@db:5432/x"},
		{"net/url", "postgres://app:" + enc + "@db:port/x"},
		{"net/url", "postgres://app:" + enc + "%zz@db/x"},
		{"pgx", "postgres://app:" + enc + "@db:99999/x"},
		{"pgx", "postgres://app@db:99999/x?password=" + enc},
		{"pgx", "postgres://app:" + secret + "@db:5432/x"},
		{"pgx", "postgres://app:" + secret + "@db:notaport/x?password=" + secret},
		{"pgx", "host=db password='" + secret + "' port=notaport"},
		{"pgx", "host=db password=" + secret + " sslmode=bogus"},
		{"mysql", "legacy:" + secret + "@tcp(db:3306/legacy"},
	} {
		t.Run(c.parser+" "+c.dsn, func(t *testing.T) {
			err := parsers[c.parser](c.dsn)
			if err == nil {
				t.Fatalf("%s accepted %q; the case tests nothing", c.parser, c.dsn)
			}
			got := RedactError(err, c.dsn)
			if !errors.Is(got, err) {
				t.Errorf("the redacted error does not wrap the original")
			}
			for _, piece := range pieces(secret) {
				if strings.Contains(got.Error(), piece) {
					t.Errorf("%s: %q shows %q of the password", c.parser, got, piece)
				}
			}
		})
	}
}

// pieces are the password's fragments a parser might quote: each run of
// at least 4 characters, plain and query-escaped.
func pieces(secret string) []string {
	var out []string
	for _, s := range []string{secret, url.QueryEscape(secret)} {
		for i := 0; i+4 <= len(s); i++ {
			out = append(out, s[i:i+4])
		}
	}
	return out
}

func TestRedactErrorLeavesOtherErrorsAlone(t *testing.T) {
	err := fmt.Errorf("store: %w", errors.New("connection refused"))
	if got := RedactError(err, "postgres://app:s3cret@db/x"); got != err {
		t.Errorf("got %v, want the error itself", got)
	}
	if RedactError(nil, "postgres://app:s3cret@db/x") != nil {
		t.Error("a nil error became non-nil")
	}
}

// FuzzRedact writes a password into each form of address, escaped as
// that form wants or raw where parsers still find it, and checks that
// what Redact returns does not depend on the password.
func FuzzRedact(f *testing.F) {
	for _, seed := range []string{"s3cret", "p@ss:word/?#&", "it's a b", `back\slash`, "%zz%41", "ab/c+d=="} {
		f.Add(seed)
	}
	addresses := func(password string) []string {
		kv := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password)
		return []string{
			"postgres://app:" + url.PathEscape(password) + "@db:5432/x?sslmode=disable",
			"postgres://app:" + password + "@db:5432/x?sslmode=disable",
			"postgres://app@db/x?sslmode=disable&password=" + url.QueryEscape(password),
			"host=db user=app password='" + kv + "' dbname=x",
			"legacy:" + password + "@tcp(db:3306)/legacy",
		}
	}
	want := addresses("placeholder")
	for i, in := range want {
		want[i] = Redact(in)
	}
	f.Fuzz(func(t *testing.T, password string) {
		if strings.Contains(password, "?") && strings.Contains(strings.ToLower(password), "password") {
			return // a query of its own inside the userinfo: hidden, with more
		}
		for i, in := range addresses(password) {
			if got := Redact(in); got != want[i] {
				t.Errorf("Redact(%q) = %q, want %q", in, got, want[i])
			}
		}
	})
}
