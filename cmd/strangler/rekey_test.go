package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/internal/testkit"
)

// writeKeyedConfig writes a configuration of the dead-letter route on
// store dsn with the store_encryption keys (hex) given, none for none.
func writeKeyedConfig(t *testing.T, dir, name, legacy, modern, dsn string, keys ...string) string {
	t.Helper()
	encryption := ""
	if len(keys) > 0 {
		encryption = "store_encryption: { keys: [" + strings.Join(keys, ", ") + "] }\n"
	}
	path := filepath.Join(dir, name)
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
admin:
  listen: "127.0.0.1:0"
  tokens: [{name: alice, token: %q, role: admin}]
backends:
  legacy: { url: %q, timeout: 2s }
  modern: { url: %q, timeout: 2s }
shutdown: { delay: 0s, grace: 2s }
store: %q
state_snapshot: %q
%srepairs: { backoff: 20ms, max_backoff: 200ms, max_attempts: 100000, workers: 2 }
routes:
  - {name: dw-dead, match: "PUT /dwdead/{id}", mode: dual-write}
`, aliceToken, legacy, modern, dsn, path+".snapshot.json", encryption)
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func hexKey(b byte) string { return hex.EncodeToString(bytes.Repeat([]byte{b}, 32)) }

// storeHolds returns where in the store's tables the canaries are.
func storeHolds(t *testing.T, dsn string) []string {
	t.Helper()
	var where []string
	for name, text := range storeTables(t, dsn) {
		if strings.HasPrefix(name, "table ") && len(findCanaries(text)) > 0 {
			where = append(where, name)
		}
	}
	slices.Sort(where)
	return where
}

// deadBody reads the dead write's body through the admin API, as status
// and text.
func deadBody(t *testing.T, path, id string) (int, string) {
	t.Helper()
	f := startCanaryFacade(t, path)
	defer f.stop()
	req, _ := http.NewRequest("GET", "http://"+f.admin+"/admin/repairs/"+id+"?body=1", nil)
	req.Header.Set("Authorization", "Bearer "+aliceToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func TestStoreRekeyEncryptsAStoreKeptInClearAndRotatesItsKey(t *testing.T) {
	onBothStores(t, func(t *testing.T, dsn func(dir string) string) {
		legacy, modern := canaryBackends(t)
		dir := t.TempDir()
		store := dsn(dir)
		config := func(name string, keys ...string) string {
			return writeKeyedConfig(t, dir, name, legacy.URL, modern.URL, store, keys...)
		}
		rekey := func(path string) (string, error) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"store", "rekey", "--config", path}, noEnv, &stdout, &stderr)
			return stdout.String(), err
		}
		clear := config("clear.yaml")

		// A write the secondary refused, journaled in clear.
		f := startCanaryFacade(t, clear)
		if got := sendCanary(t, "PUT", "http://"+f.public+"/dwdead/"+canaryMRN+canaryQuery, jsonBody); got != 200 {
			t.Fatalf("PUT: got %d", got)
		}
		id := repairOf(t, f.admin, "dw-dead", "dead")
		f.stop()
		if where := storeHolds(t, store); !slices.Equal(where, []string{"table strangler_repairs"}) {
			t.Fatalf("without store_encryption the canaries are in %v, want them in the dead write", where)
		}

		t.Run("rekey without keys refuses", func(t *testing.T) {
			_, err := rekey(clear)
			var u usageError
			if !errors.As(err, &u) || !strings.Contains(err.Error(), "no store_encryption keys") {
				t.Errorf("got %v, want a usage error naming store_encryption", err)
			}
		})

		t.Run("rekey encrypts what was kept in clear, and it reads back", func(t *testing.T) {
			out, err := rekey(config("one.yaml", hexKey(1)))
			if err != nil || out != "encrypted under the first key: 1 journaled writes, 0 shadow samples, 0 read-repair keys, 1 store secrets, 0 API backfill rows and groups\n" {
				t.Fatalf("rekey printed %q, %v", out, err)
			}
			if where := storeHolds(t, store); len(where) > 0 {
				t.Errorf("after rekey the canaries are in %v", where)
			}
			if code, body := deadBody(t, config("one.yaml", hexKey(1)), id); code != 200 || len(findCanaries(body)) < 5 {
				t.Errorf("the dead write's body: %d %s, want it readable", code, body)
			}
		})

		t.Run("a new key first, the old one after: rekey moves everything to the new one", func(t *testing.T) {
			out, err := rekey(config("both.yaml", hexKey(2), hexKey(1)))
			if err != nil || !strings.HasPrefix(out, "encrypted under the first key: 1 journaled writes,") {
				t.Fatalf("rekey printed %q, %v", out, err)
			}
			if code, body := deadBody(t, config("two.yaml", hexKey(2)), id); code != 200 || len(findCanaries(body)) < 5 {
				t.Errorf("with the old key dropped, the dead write's body: %d %s, want it readable", code, body)
			}
		})

		t.Run("a lost key loses the body, says so, and nothing else", func(t *testing.T) {
			lost := config("lost.yaml", hexKey(3))
			code, body := deadBody(t, lost, id)
			if code != http.StatusGone || !strings.Contains(body, "store_encryption.keys") || !strings.Contains(body, "intact") {
				t.Errorf("got %d %s, want 410 naming store_encryption.keys and saying the rest is intact", code, body)
			}
			f := startCanaryFacade(t, lost)
			strangler := cli(f.admin)
			if out := strangler(t, "repairs", "list").must(t); !strings.Contains(out, id) || !strings.Contains(out, "dead") {
				t.Errorf("the write is no longer listed:\n%s", out)
			}
			strangler(t, "repairs", "retry", id, "--reason", "try again").must(t)
			testkit.Eventually(t, 10*time.Second, "the retried write is dead again, saying why", func() bool {
				out := strangler(t, "repairs", "show", id).must(t)
				return strings.Contains(out, "dead") && strings.Contains(out, "configure that key again")
			})
			f.stop()
			if _, err := rekey(lost); err == nil || !strings.Contains(err.Error(), "1 rows are encrypted with a key that is not in store_encryption.keys") {
				t.Errorf("rekey with the key lost: %v, want it to say one row cannot be re-encrypted", err)
			}
		})
	})
}

func TestConfigCheckWarnsAboutADualWriteRouteWithoutStoreEncryption(t *testing.T) {
	dir := t.TempDir()
	clear := writeKeyedConfig(t, dir, "clear.yaml", "http://legacy", "http://modern", "sqlite:x.db")
	// A key as openssl rand -hex 32 makes one: config check refuses
	// hexKey's, one byte repeated, as the key that encrypts.
	keyed := writeKeyedConfig(t, dir, "keyed.yaml", "http://legacy", "http://modern", "sqlite:x.db", "375d33425fd95cfbff4874b9110e993f529820aadcd00be2b75fd4bbbbdb5f4d")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"config", "check", clear, keyed}, noEnv, &stdout, &stderr); err != nil {
		t.Fatalf("config check: %v\n%s", err, stderr.String())
	}
	// The warning points at the route's mode: its line and column in the file.
	text, err := os.ReadFile(clear)
	if err != nil {
		t.Fatal(err)
	}
	before, _, _ := strings.Cut(string(text), "mode: dual-write")
	line := strings.Count(before, "\n") + 1
	col := len(before) - strings.LastIndex(before, "\n") + len("mode: ")
	want := fmt.Sprintf("%s:%d:%d: routes[0].mode: warning: dual-write journals each write's path, headers and body until the secondary applied it", clear, line, col)
	if !strings.HasPrefix(stderr.String(), want) || strings.Count(stderr.String(), "warning") != 1 {
		t.Errorf("stderr = %q, want one warning, about %s:\n%s", stderr.String(), clear, want)
	}
	if stdout.String() != clear+": ok, 1 routes\n"+keyed+": ok, 1 routes\n" {
		t.Errorf("stdout = %q, want both files ok", stdout.String())
	}
}
