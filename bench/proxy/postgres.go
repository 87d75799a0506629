package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
)

// defaultPostgres is the local test server internal/testdb also defaults to.
const defaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// needsPostgres in a stranglerSpec's store asks for a fresh schema on the
// -postgres server.
const needsPostgres = "postgres"

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// postgresSchema creates a schema of its own on the server base names and
// returns a store URL whose connections use it; cleanup drops it once the
// stranglers using it are gone. An unreachable server is an error that
// says so, for the skip note.
func (s *supervisor) postgresSchema(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("-postgres: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		return "", fmt.Errorf("PostgreSQL at %s is not reachable (set -postgres or STRANGLER_TEST_POSTGRES): %v", u.Redacted(), err)
	}
	defer conn.Close(context.Background())
	b := make([]byte, 6)
	rand.Read(b)
	schema := "strangler_bench_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		return "", fmt.Errorf("creating a schema on %s: %v", u.Redacted(), err)
	}
	s.atCleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err == nil {
			_, err = conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE")
			conn.Close(ctx)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: dropping schema %s: %v\n", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}
