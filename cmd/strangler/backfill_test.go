package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"strangler/backfill"
	"strangler/backfill/fixture"
	"strangler/internal/testdb"
	"strangler/legacy"
	"strangler/modern"
)

// migration is a legacy database full of patients, an empty modern one,
// and the reference backfill configuration between them.
type migration struct {
	config string
	env    map[string]string
	modern *pgxpool.Pool
}

func newMigration(t *testing.T, patients int) *migration {
	t.Helper()
	ctx := context.Background()
	myDSN, pgURL := testdb.MySQL(t), testdb.Postgres(t)
	ldb, err := legacy.Open(ctx, myDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer ldb.Close()
	if err := fixture.Generate(ctx, ldb, fixture.Sizes{Patients: patients, MRNs: true}); err != nil {
		t.Fatal(err)
	}
	pool, err := modern.Open(ctx, pgURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	cfg, err := os.ReadFile("../../backfill/testdata/reference.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "backfill.yaml")
	if err := os.WriteFile(path, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	return &migration{config: path, modern: pool,
		env: map[string]string{"LEGACY_DSN": fixture.MySQLURL(myDSN), "MODERN_DSN": pgURL, "BACKFILL_BATCH": "200"}}
}

func (m *migration) getenv(k string) string { return m.env[k] }

// run runs strangler in-process with the migration's environment.
func (m *migration) run(t *testing.T, args ...string) (stdout string, err error) {
	t.Helper()
	var out, logs bytes.Buffer
	err = run(context.Background(), args, m.getenv, &out, &logs)
	return out.String(), err
}

func (m *migration) count(t *testing.T, q string) int64 {
	t.Helper()
	var n int64
	if err := m.modern.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestBackfillResumesAfterKill9 kills a backfill process outright in the
// middle of its work and runs it again: the second run must start from
// the checkpoints, copy exactly the rest, and leave each row once.
func TestBackfillResumesAfterKill9(t *testing.T) {
	// It waits on its workers, leases and a kill more than it computes:
	// with the other waiting tests, together.
	t.Parallel()
	const patients = 20000
	m := newMigration(t, patients)
	cmd := exec.Command(binary(t), "backfill", "--config", m.config, "--rate", "8000", "--progress", "none")
	cmd.Env = append(os.Environ(), "LEGACY_DSN="+m.env["LEGACY_DSN"], "MODERN_DSN="+m.env["MODERN_DSN"], "BACKFILL_BATCH=200")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var done int64
		// The ledger may not exist yet.
		m.modern.QueryRow(context.Background(), "SELECT coalesce(sum(rows_done), 0) FROM strangler_backfill_checkpoints WHERE table_name = 'patients'").Scan(&done)
		if done >= 3000 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the backfill made no progress; its log:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	if err := cmd.Wait(); err == nil {
		t.Fatal("the backfill finished before it was killed; slow it down")
	}
	failOnDataRace(t, "strangler backfill", logs.String())

	// Each batch and its checkpoint commit together: what the checkpoints
	// count is exactly what is in modern.
	checkpointed := m.count(t, "SELECT sum(rows_done) FROM strangler_backfill_checkpoints WHERE table_name = 'patients'")
	if copied := m.count(t, "SELECT count(*) FROM patients"); copied != checkpointed || copied >= patients {
		t.Fatalf("after the kill modern has %d patients and the checkpoints count %d; want them equal and short of %d", copied, checkpointed, patients)
	}

	report := filepath.Join(t.TempDir(), "report.json")
	if out, err := m.run(t, "backfill", "--config", m.config, "--report-json", report); err != nil {
		t.Fatalf("the resumed run failed: %v\n%s", err, out)
	}
	var rep backfill.Report
	b, _ := os.ReadFile(report)
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if p := rep.Tables[0]; p.Table != "patients" || p.Read != patients-checkpointed || p.Inserted != p.Read {
		t.Errorf("the resumed run read %d patients and inserted %d; want the %d after the checkpoints", p.Read, p.Inserted, patients-checkpointed)
	}
	if got := m.count(t, "SELECT count(*) FROM patients"); got != patients {
		t.Errorf("modern has %d patients, want %d", got, patients)
	}
	if got := m.count(t, "SELECT count(*) FROM strangler_backfill_runs WHERE status = 'interrupted'"); got != 1 {
		t.Errorf("%d runs are marked interrupted, want the killed one", got)
	}
	if out, err := m.run(t, "verify", "--config", m.config); err != nil {
		t.Errorf("verify after the resumed run: %v\n%s", err, out)
	}
}

func TestVerifyCommandFailsOnDeviations(t *testing.T) {
	m := newMigration(t, 500)
	if out, err := m.run(t, "backfill", "--config", m.config); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := m.modern.Exec(context.Background(), "DELETE FROM patients WHERE legacy_id = 321"); err != nil {
		t.Fatal(err)
	}
	report := filepath.Join(t.TempDir(), "verify.json")
	out, err := m.run(t, "verify", "--config", m.config, "--tables", "patients", "--report-json", report)
	if err == nil || !strings.Contains(err.Error(), "1 rows differ") {
		t.Errorf("verify returned %v, want an error counting 1 deviation", err)
	}
	if !strings.Contains(out, "patients: missing in modern: 321") {
		t.Errorf("the report does not name the missing key:\n%s", out)
	}
	if b, err := os.ReadFile(report); err != nil || !strings.Contains(string(b), `"missing_keys": [`) {
		t.Errorf("JSON report: %v\n%s", err, b)
	}
	ownerOnly(t, report)

	t.Run("values are shown only when asked for, and never redacted ones", func(t *testing.T) {
		if _, err := m.modern.Exec(context.Background(), "UPDATE hospital_patients SET site = 'JGH', mrn = 'SECRET1' WHERE legacy_id = 20"); err != nil {
			t.Fatal(err)
		}
		out, _ := m.run(t, "verify", "--config", m.config, "--tables", "hospital-patients")
		if want := "hospital-patients: changed 20: mrn (redacted), site\n"; !strings.Contains(out, want) || strings.Contains(out, "RVH") {
			t.Errorf("without --show-values, want %q and no value:\n%s", want, out)
		}
		out, _ = m.run(t, "verify", "--config", m.config, "--tables", "hospital-patients", "--show-values")
		if want := `hospital-patients: changed 20: mrn (redacted), site ("RVH" in legacy, "JGH" in modern)`; !strings.Contains(out, want) || strings.Contains(out, "SECRET1") {
			t.Errorf("with --show-values, want %q and the redacted MRN hidden:\n%s", want, out)
		}
	})
}

func TestBackfillCommandReports(t *testing.T) {
	m := newMigration(t, 300)
	dir := t.TempDir()
	html, js := filepath.Join(dir, "report.html"), filepath.Join(dir, "report.json")

	t.Run("a dry run says what it would do and does nothing", func(t *testing.T) {
		out, err := m.run(t, "backfill", "--config", m.config, "--dry-run")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "dry run") || !strings.Contains(out, "patients") {
			t.Errorf("output:\n%s", out)
		}
		if got := m.count(t, "SELECT count(*) FROM patients"); got != 0 {
			t.Errorf("a dry run wrote %d patients", got)
		}
	})

	t.Run("a run prints a table and writes JSON and HTML", func(t *testing.T) {
		out, err := m.run(t, "backfill", "--config", m.config, "--report-json", js, "--report-html", html, "--progress", "lines")
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"backfill: patients done: 300 read, 300 written", "table", "already present", "hospital-patients"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		page, _ := os.ReadFile(html)
		if !strings.Contains(string(page), "Every row read was copied.") {
			t.Errorf("HTML report:\n%s", page)
		}
		var rep backfill.Report
		b, _ := os.ReadFile(js)
		if err := json.Unmarshal(b, &rep); err != nil || len(rep.Tables) != 3 || rep.Tables[0].Inserted != 300 {
			t.Errorf("JSON report %v: %s", err, b)
		}
		ownerOnly(t, js, html)
	})

	t.Run("explicit keys are copied", func(t *testing.T) {
		m.modern.Exec(context.Background(), "DELETE FROM patients WHERE legacy_id IN (7, 8)")
		out, err := m.run(t, "backfill", "--config", m.config, "--keys", "patients=7,8")
		if err != nil || m.count(t, "SELECT count(*) FROM patients WHERE legacy_id IN (7, 8)") != 2 {
			t.Errorf("--keys patients=7,8: %v\n%s", err, out)
		}
	})

	t.Run("a run pushes its metrics to a Pushgateway when it ends", func(t *testing.T) {
		var mu sync.Mutex
		var method, path string
		var body []byte
		gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			mu.Lock()
			method, path, body = r.Method, r.URL.Path, b
			mu.Unlock()
			w.WriteHeader(http.StatusOK)
		}))
		defer gw.Close()
		if out, err := m.run(t, "backfill", "--config", m.config, "--restart", "--metrics-push", gw.URL); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		mu.Lock()
		defer mu.Unlock()
		if method != http.MethodPut || path != "/metrics/job/strangler_backfill" {
			t.Errorf("the push was %s %s, want PUT /metrics/job/strangler_backfill", method, path)
		}
		for _, want := range []string{"strangler_backfill_rows_total", "already_present", "hospital-patients"} {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("the pushed metrics lack %q", want)
			}
		}
	})

	t.Run("a failed push is logged without the Pushgateway's password", func(t *testing.T) {
		gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		}))
		defer gw.Close()
		const password = "s3cret-Pw9"
		push := strings.Replace(gw.URL, "://", "://ops:"+password+"@", 1)
		var out, logs bytes.Buffer
		if err := run(context.Background(), []string{"backfill", "--config", m.config, "--restart", "--metrics-push", push}, m.getenv, &out, &logs); err != nil {
			t.Fatalf("%v\n%s", err, out.String())
		}
		if !strings.Contains(logs.String(), `"msg":"metrics push"`) || !strings.Contains(logs.String(), "401") {
			t.Errorf("the log does not say the push failed (401):\n%s", logs.String())
		}
		if strings.Contains(logs.String()+out.String(), password) {
			t.Errorf("the output shows the Pushgateway's password:\n%s%s", logs.String(), out.String())
		}
	})

	t.Run("mistakes on the command line are usage errors", func(t *testing.T) {
		for _, args := range [][]string{
			{"backfill"},
			{"backfill", "--config", m.config, "--keys", "patients"},
			{"backfill", "--config", m.config, "--keys", "patients=1", "--only-failed"},
			{"backfill", "--config", m.config, "--progress", "fancy"},
			{"backfill", "--config", m.config, "--since-checkpoint", "--restart"},
			{"backfill", "--config", m.config, "--propagate-deletes", "--only-failed"},
			{"backfill", "--config", m.config, "--propagate-deletes", "--since-checkpoint"},
			{"verify", "--config", m.config, "--every", "1ms"},
			{"backfill", "--config", m.config, "--worker"},
			{"backfill", "--config", m.config, "--run", "nightly"},
		} {
			var u usageError
			if _, err := m.run(t, args...); !errors.As(err, &u) {
				t.Errorf("%q: got %v, want a usage error", args, err)
			}
		}
	})

	t.Run("a file without a backfill section is refused", func(t *testing.T) {
		path := writeConfig(t, "", "http://legacy", "http://modern", `  - {name: p, match: "GET /p", mode: legacy}`)
		if _, err := m.run(t, "backfill", "--config", path); err == nil || !strings.Contains(err.Error(), "no backfill section") {
			t.Errorf("got %v", err)
		}
	})
}

func TestVerifyEveryExportsDeviations(t *testing.T) {
	m := newMigration(t, 200)
	if out, err := m.run(t, "backfill", "--config", m.config); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := m.modern.Exec(context.Background(), "DELETE FROM patients WHERE legacy_id IN (5, 6)"); err != nil {
		t.Fatal(err)
	}
	// Prometheus reaches verify by the name "verify", as in deploy/compose.yaml.
	f, err := os.OpenFile(m.config, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\nadmin: {hosts: [verify]}\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	logs, stdout := newLogBuffer(), newLogBuffer()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"verify", "--config", m.config, "--every", "1s", "--metrics-listen", "127.0.0.1:0"}, m.getenv, stdout, logs)
	}()
	addr := logs.waitFor(t, "metrics", nil, 10*time.Second)["listen"].(string)
	logs.waitFor(t, "verified", map[string]any{"table": "photos"}, 10*time.Second)
	sample := `strangler_verify_deviations{kind="missing",table="patients"}`
	if v := metricValue(t, addr, sample); v != "2" {
		t.Errorf("%s = %q, want 2", sample, v)
	}
	if v := metricValue(t, addr, `strangler_verify_deviations{kind="missing",table="hospital-patients"}`); v != "2" {
		t.Errorf("the deleted patients' MRNs: got %q missing, want 2", v)
	}
	// The metrics name tables and count deviations: a page whose owner
	// points its name at the listener (DNS rebinding) reads none of them,
	// as from the admin listener.
	_, port, _ := net.SplitHostPort(addr)
	for _, c := range []struct {
		host string
		want int
	}{{"rebind.example:" + port, http.StatusMisdirectedRequest}, {"verify:" + port, http.StatusOK}, {"localhost:" + port, http.StatusOK}} {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
		req.Host = c.host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want || c.want != http.StatusOK && (strings.Contains(string(body), "patients") || !strings.Contains(string(body), `"error"`)) {
			t.Errorf("GET /metrics with Host %s: %d %s; want %d", c.host, resp.StatusCode, body, c.want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("verify --every returned %v after a stop, want nil", err)
	}
}

// ownerOnly fails the test unless the files at paths are readable by
// their owner alone: reports name rows' keys (record numbers), which
// other users of the machine need not read. Before, they were 0644.
func ownerOnly(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s is %v: other users may read the keys in it", filepath.Base(p), perm)
		}
	}
}
