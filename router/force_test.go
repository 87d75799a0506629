package router

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config/configfile"
	"strangler/force"
	"strangler/store"
)

// forceSecret is the facade's force_token_key in these tests.
var forceSecret = [32]byte{'f', 'o', 'r', 'c', 'e'}

// newForceFacade serves routes with force tokens on, and a real SQLite
// journal for its dual-write route.
func newForceFacade(t *testing.T, legacyURL, modernURL, routes string, opts ...func(*Deps)) *facade {
	t.Helper()
	st, err := store.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	yaml := fmt.Sprintf("backends:\n  legacy: {url: %q, timeout: 1s}\n  modern: {url: %q, timeout: 1s}\nforce_token_key: %s\nroutes:\n%s",
		legacyURL, modernURL, hex.EncodeToString(forceSecret[:]), routes)
	cfg, err := configfile.Parse("test.yaml", []byte(yaml), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatalf("config: %v\n%s", err, yaml)
	}
	f := &facade{reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	deps := Deps{Metrics: NewMetrics(f.reg), Log: slog.New(slog.NewJSONHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Journal: storeJournal{Store: st}}
	for _, o := range opts {
		o(&deps)
	}
	f.router = New(deps)
	table, err := f.router.Build(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.router.Swap(table)
	f.Server = httptest.NewServer(f.router)
	t.Cleanup(f.Close)
	return f
}

func TestTheForceHeaderSendsOneRequestToOneBackend(t *testing.T) {
	legacy := newBackend(t, answer(200, `"legacy"`))
	modern := newBackend(t, answer(200, `"modern"`))
	f := newForceFacade(t, legacy.URL, modern.URL, `
  - {name: get-patient, match: "GET /patients/{id}", mode: legacy}
  - {name: list-photos, match: "GET /photos/{id}", mode: fallback, percent: 0}
  - {name: update-patient, match: "PUT /patients/{id}", mode: dual-write}
`)
	key := force.NewKey(forceSecret)
	now := time.Now()
	sign := func(route, backend string, ttl time.Duration) string {
		return key.Sign(force.Claim{Route: route, Backend: backend, Expires: now.Add(ttl), ID: "t-" + route})
	}
	send := func(t *testing.T, method, path string, header ...string) string {
		t.Helper()
		req, _ := http.NewRequest(method, f.URL+path, strings.NewReader(`{}`))
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Add(header[i], header[i+1])
		}
		resp, body := f.do(t, req)
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s: got %d %s", method, path, resp.StatusCode, body)
		}
		return body
	}
	ignored := func(route, reason string) float64 {
		return f.metric(t, "strangler_force_ignored_total", map[string]string{"route": route, "reason": reason})
	}

	t.Run("a valid value sends the request to its backend, and no backend sees it", func(t *testing.T) {
		if got := send(t, "GET", "/patients/7", force.Header, sign("get-patient", "modern", time.Hour)); got != `"modern"` {
			t.Fatalf("got %s, want modern's answer on a legacy route", got)
		}
		if h := modern.last(t).Header; h.Get(force.Header) != "" {
			t.Errorf("modern received %s: %q", force.Header, h.Get(force.Header))
		}
		if got := f.metric(t, "strangler_forced_requests_total", map[string]string{"route": "get-patient", "backend": "modern"}); got != 1 {
			t.Errorf("strangler_forced_requests_total = %v, want 1", got)
		}
		if w := f.router.deps.Stats.Window("get-patient", time.Now(), time.Minute); w.Requests != 0 {
			t.Errorf("the route counted %d requests, want none: a tester's request is no evidence for gates or retirement", w.Requests)
		}
		line := f.logLines(t, "forced request")
		if len(line) != 1 || line[0]["force_token"] != "t-get-patient" || line[0]["backend"] != "modern" {
			t.Errorf("got forced log lines %v, want one naming the token's id", line)
		}
	})
	t.Run("legacy can be forced on a route that would send the request to modern, with no fallback", func(t *testing.T) {
		if got := send(t, "GET", "/photos/9", force.Header, sign("list-photos", "legacy", time.Hour)); got != `"legacy"` {
			t.Fatalf("got %s, want legacy's answer", got)
		}
		before := modern.hits()
		// Percent 0 would send it to legacy: forcing modern overrides it.
		if got := send(t, "GET", "/photos/9", force.Header, sign("list-photos", "modern", time.Hour)); got != `"modern"` || modern.hits() != before+1 {
			t.Fatalf("got %s, want modern's answer past the split", got)
		}
	})

	var other [32]byte
	other[0] = 9
	for _, tc := range []struct {
		name, path, method, value, route, reason string
	}{
		{"a forged value", "/patients/7", "GET", force.NewKey(other).Sign(force.Claim{Route: "get-patient", Backend: "modern", Expires: now.Add(time.Hour)}), "get-patient", "forged"},
		{"an expired value", "/patients/7", "GET", sign("get-patient", "modern", -time.Second), "get-patient", "expired"},
		{"another route's value", "/patients/7", "GET", sign("list-photos", "modern", time.Hour), "get-patient", "other_route"},
		{"garbage", "/patients/7", "GET", "modern", "get-patient", "malformed"},
		{"a valid value on a dual-write route", "/patients/7", "PUT", sign("update-patient", "modern", time.Hour), "update-patient", "dual_write"},
	} {
		t.Run(tc.name+" is ignored and counted; the request goes where the route says", func(t *testing.T) {
			before := modern.hits()
			if got := send(t, tc.method, tc.path, force.Header, tc.value); got != `"legacy"` {
				t.Errorf("got %s, want legacy's answer as the route's mode says", got)
			}
			if tc.method == "GET" && modern.hits() != before {
				t.Errorf("modern got the request")
			}
			if got := ignored(tc.route, tc.reason); got != 1 {
				t.Errorf("strangler_force_ignored_total{route=%q,reason=%q} = %v, want 1", tc.route, tc.reason, got)
			}
			if h := legacy.last(t).Header; h.Get(force.Header) != "" {
				t.Errorf("legacy received %s", force.Header)
			}
		})
	}
	t.Run("two values at once are ignored", func(t *testing.T) {
		v := sign("get-patient", "modern", time.Hour)
		if got := send(t, "GET", "/patients/7", force.Header, v, force.Header, v); got != `"legacy"` {
			t.Errorf("got %s, want legacy's answer", got)
		}
		if got := ignored("get-patient", "malformed"); got != 2 {
			t.Errorf("malformed = %v, want 2", got)
		}
	})
}

func TestForceHeadersAreIgnoredWithoutAKey(t *testing.T) {
	legacy := newBackend(t, answer(200, `"legacy"`))
	modern := newBackend(t, answer(200, `"modern"`))
	f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: get-patient, match: "GET /patients/{id}", mode: legacy}
`)
	value := force.NewKey(forceSecret).Sign(force.Claim{Route: "get-patient", Backend: "modern", Expires: time.Now().Add(time.Hour)})
	req, _ := http.NewRequest("GET", f.URL+"/patients/7", nil)
	req.Header.Set(force.Header, value)
	if _, body := f.do(t, req); body != `"legacy"` {
		t.Errorf("got %s, want legacy's answer: without force_token_key nothing is forced", body)
	}
	if got := f.metric(t, "strangler_force_ignored_total", map[string]string{"route": "get-patient", "reason": "off"}); got != 1 {
		t.Errorf("strangler_force_ignored_total{reason=off} = %v, want 1", got)
	}
}
