package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := writeConfig(t, filepath.Join(dir, "good.yaml"), "http://legacy", "http://modern", `  - {name: p, match: "GET /p", mode: legacy}`)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("backends:\n  legacy: {url: \"http://l\"}\n  modern: {url: \"http://m\"}\nroutes:\n  - name: p\n    match: \"GET /p\"\n    mode: dual-writes\n    percnt: 5\n"), 0o644)

	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"config", "check", good}, noEnv, &stdout, &stderr); err != nil {
		t.Fatalf("a good file failed: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), good+": ok, 1 routes") {
		t.Errorf("stdout = %q", stdout.String())
	}

	stdout.Reset()
	err := run(context.Background(), []string{"config", "check", good, bad}, noEnv, &stdout, &stderr)
	if err == nil {
		t.Fatal("a bad file passed the check")
	}
	for _, want := range []string{
		bad + `:7:11: routes[0].mode: unknown mode "dual-writes"; want legacy, shadow, fallback, dual-write or modern`,
		bad + `:8:5: routes[0].percnt: unknown field; did you mean "percent"?`,
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

func TestConfigPrintRedactsSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.yaml")
	os.WriteFile(path, []byte("admin: {token: \"${TOKEN}\"}\nbackends:\n  legacy: {url: \"http://l\"}\n  modern: {url: \"http://m\"}\n"), 0o644)
	var stdout bytes.Buffer
	getenv := func(k string) string { return map[string]string{"TOKEN": "hunter2-is-not-a-good-token"}[k] }
	if err := run(context.Background(), []string{"config", "print", path}, getenv, &stdout, io.Discard); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stdout.String(), "hunter2") || !strings.Contains(stdout.String(), "token: <redacted>") {
		t.Errorf("printed config:\n%s", stdout.String())
	}
	if !strings.Contains(stdout.String(), "max_replay_body: 10MiB") {
		t.Errorf("printed config lacks the defaults:\n%s", stdout.String())
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"config"}, {"config", "check"}, {"serve", "--nope"}} {
		var u usageError
		if err := run(context.Background(), args, noEnv, io.Discard, io.Discard); !errors.As(err, &u) {
			t.Errorf("%q: got %v, want a usage error", args, err)
		}
	}
}

func TestDemo(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	stdout, logs := newLogBuffer(), newLogBuffer()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"}, noEnv, stdout, logs)
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
		code, body := getBody(t, facade[1]+path)
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s = %d %s", path, code, body)
		}
	}
	logs.waitFor(t, "fallback", map[string]any{"route": "get-patient", "reason": "not_found"}, time.Second)
	if v := metricValue(t, line["admin"].(string), `strangler_fallback_total{reason="not_found",route="get-patient"}`); v != "1" {
		t.Errorf("strangler_fallback_total = %q, want 1 (for /patients/75)", v)
	}
}
