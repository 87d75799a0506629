// Package testdb gives tests a private, empty database on the real
// PostgreSQL and MariaDB/MySQL servers, never a mock. The servers come from
// STRANGLER_TEST_POSTGRES and STRANGLER_TEST_MYSQL (defaulting to the local
// ones); a server that cannot be reached skips the test, or fails it when
// STRANGLER_REQUIRE_DB=1, as in CI.
package testdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// Defaults used when the environment names no server.
const (
	DefaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	DefaultMySQL    = "root@tcp(127.0.0.1:3306)/test"
)

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func unreachable(t testing.TB, variable string, err error) {
	t.Helper()
	Unavailable(t, "database not reachable; set or check "+variable, err)
}

// Unavailable skips the test for want of what a database must give it
// (need says what: a server to reach, a database of its own to create),
// or fails it when STRANGLER_REQUIRE_DB=1, as in CI, so that a run
// without it cannot pass by skipping.
func Unavailable(t testing.TB, need string, err error) {
	t.Helper()
	if os.Getenv("STRANGLER_REQUIRE_DB") == "1" {
		t.Fatalf("%s (required: STRANGLER_REQUIRE_DB=1): %v", need, err)
	}
	t.Skipf("%s: %v", need, err)
}

func uniqueName() string {
	b := make([]byte, 6)
	rand.Read(b)
	return "strangler_test_" + hex.EncodeToString(b)
}

// Postgres returns the URL of a new, empty schema on the test PostgreSQL
// server; connections made with it use that schema. It is dropped when the
// test ends.
func Postgres(t testing.TB) string {
	t.Helper()
	base := env("STRANGLER_TEST_POSTGRES", DefaultPostgres)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		unreachable(t, "STRANGLER_TEST_POSTGRES", err)
	}
	defer conn.Close(context.Background())
	schema := uniqueName()
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Logf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Logf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("STRANGLER_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// MySQL returns the DSN (go-sql-driver/mysql format) of a new, empty
// database on the test MariaDB/MySQL server. It is dropped when the test
// ends.
func MySQL(t testing.TB) string {
	t.Helper()
	base := env("STRANGLER_TEST_MYSQL", DefaultMySQL)
	cfg, err := mysql.ParseDSN(base)
	if err != nil {
		t.Fatalf("STRANGLER_TEST_MYSQL: %v", err)
	}
	cfg.Timeout = 5 * time.Second
	db, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatalf("STRANGLER_TEST_MYSQL: %v", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		unreachable(t, "STRANGLER_TEST_MYSQL", err)
	}
	name := uniqueName()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			return
		}
		defer db.Close()
		if _, err := db.Exec("DROP DATABASE " + name); err != nil {
			t.Logf("drop database %s: %v", name, err)
		}
	})
	cfg.DBName = name
	cfg.ParseTime = true
	return cfg.FormatDSN()
}
