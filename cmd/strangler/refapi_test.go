package main

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"strangler/backfill/fixture"
	"strangler/internal/testdb"
)

// startRefAPI runs `strangler SIDE serve` in-process and returns its base
// URL once it serves.
func startRefAPI(t *testing.T, side string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := newLogBuffer()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{side, "serve", "--listen", "127.0.0.1:0"}, args...), noEnv, logs, logs)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s serve returned %v", side, err)
		}
	})
	line := logs.waitFor(t, "serving", map[string]any{"backend": side}, 10*time.Second)
	return "http://" + line["listen"].(string)
}

func TestReferenceAPIsServeAlone(t *testing.T) {
	t.Run("in memory, with the demo's patients", func(t *testing.T) {
		legacyURL, modernURL := startRefAPI(t, "legacy"), startRefAPI(t, "modern")
		if code, body := getBody(t, legacyURL+"/patients/100"); code != http.StatusOK || !strings.Contains(body, `"id":100`) {
			t.Errorf("legacy GET /patients/100 = %d %s", code, body)
		}
		if code, _ := getBody(t, modernURL+"/patients/100"); code != http.StatusNotFound {
			t.Errorf("modern GET /patients/100 = %d, want 404: it holds 1-60", code)
		}
	})

	t.Run("on their databases", func(t *testing.T) {
		legacyURL := startRefAPI(t, "legacy", "--dsn", fixture.MySQLURL(testdb.MySQL(t)), "--seed", "5")
		modernURL := startRefAPI(t, "modern", "--dsn", testdb.Postgres(t), "--seed", "3")
		for url, want := range map[string]int{legacyURL + "/patients/5": 200, legacyURL + "/patients/6": 404, modernURL + "/patients/3": 200, modernURL + "/patients/4": 404} {
			if code, body := getBody(t, url); code != want {
				t.Errorf("GET %s = %d %s, want %d", url, code, body, want)
			}
		}
	})

	t.Run("mistakes are usage errors", func(t *testing.T) {
		for _, args := range [][]string{{"legacy"}, {"modern", "run"}, {"legacy", "serve", "--seed", "3"}, {"modern", "serve", "extra"}} {
			var u usageError
			if err := run(context.Background(), args, noEnv, newLogBuffer(), newLogBuffer()); !errors.As(err, &u) {
				t.Errorf("%q: got %v, want a usage error", args, err)
			}
		}
	})
}

// TestDemoOnRealDatabases runs the demo with its legacy API on MariaDB and
// its modern API on PostgreSQL: the same patients, the same fallback.
func TestDemoOnRealDatabases(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stdout, logs := newLogBuffer(), newLogBuffer()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0",
			"--legacy-dsn", fixture.MySQLURL(testdb.MySQL(t)), "--modern-dsn", testdb.Postgres(t)}, noEnv, stdout, logs)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo returned %v", err)
		}
	}()
	line := logs.waitFor(t, "serving", nil, startWait)
	waitReady(t, line["admin"].(string))
	facade := regexp.MustCompile(`facade\s+(http://\S+)`).FindStringSubmatch(stdout.String())
	if facade == nil {
		t.Fatalf("the demo did not print the facade URL:\n%s", stdout.String())
	}
	for path, want := range map[string]string{"/patients/42": `"id":42`, "/patients/75": `"id":75`} {
		if code, body := getBody(t, facade[1]+path); code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d %s", path, code, body)
		}
	}
	logs.waitFor(t, "fallback", map[string]any{"route": "get-patient", "reason": "not_found"}, time.Second)
}
