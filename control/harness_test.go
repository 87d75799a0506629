package control

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config"
	"strangler/config/configfile"
	"strangler/domain"
	"strangler/internal/testdb"
	"strangler/shadow"
	"strangler/stats"
	"strangler/store"
)

const (
	aliceToken = "alice-token-0123456789"
	bobToken   = "bob-token-0123456789ab"
	veraToken  = "vera-token-0123456789ab"
	// tempToken works through 2026-11-03; the plane's clock starts two
	// and a half days before.
	tempToken = "temp-token-0123456789ab"
)

// clock is a settable time for the control plane under test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// plane is a control plane over a real SQLite store, serving its admin
// listener on loopback; applied records the effective configurations the
// router was given.
type plane struct {
	*httptest.Server
	dsn      string
	store    *store.Store
	flags    *Flags
	counters *stats.Counters
	reports  *Reports
	reg      *prometheus.Registry
	clock    *clock
	log      *slog.Logger
	// logs holds what log wrote, as JSON lines.
	logs     *logLines
	admin    *admin
	rollouts *Rollouts
	// proxies are the admin listener's trusted proxies: none unless a
	// test sets them.
	proxies *Proxies

	mu      sync.Mutex
	applied []*config.Config
}

const testRoutes = `
routes:
  - name: get-patient
    match: "GET /patients/{id}"
    mode: fallback
    gates: { max_fallback_rate: 1%, max_mismatch_rate: 0.1% }
    guard: { max_error_rate: 5%, window: 1m, min_requests: 20 }
    retire_after: 7d
    retire_min_requests: 100
  - name: create-patient
    match: "POST /patients"
    mode: legacy
`

func newPlane(t *testing.T) *plane {
	t.Helper()
	return newPlaneWith(t, planeOptions{})
}

// planeOptions vary a plane: its store, more configuration, its clock.
type planeOptions struct {
	// dsn is the store, a fresh SQLite file when empty; several planes
	// on one PostgreSQL schema are replicas.
	dsn string
	// yaml is added at the top level of the configuration (approvals).
	yaml string
	// routes replaces testRoutes when set.
	routes string
	// clock is the plane's clock; nil starts a new one.
	clock *clock
	// storeLead is how far the store's clock is ahead of the plane's, as
	// store.Store.ClockOffset would measure it on a replica whose clock
	// is off (see skewedStore); zero measures it.
	storeLead time.Duration
}

func newPlaneWith(t *testing.T, o planeOptions) *plane {
	t.Helper()
	cfg, err := configfile.Parse("test.yaml", []byte(o.yaml+`
admin:
  tokens:
    - { name: alice, token: "`+aliceToken+`", role: admin }
    - { name: bob, token: "`+bobToken+`", role: operator }
    - { name: vera, token: "`+veraToken+`", role: viewer }
    - { name: temp, token: "`+tempToken+`", role: operator, expires: 2026-11-03 }
backends:
  legacy: { url: "http://legacy.internal" }
  modern: { url: "http://modern.internal" }
`+cmp.Or(o.routes, testRoutes)), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	dsn := o.dsn
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(t.TempDir(), "s.db")
	}
	if o.clock == nil {
		o.clock = &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	}
	st, err := store.Open(context.Background(), dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	p := &plane{
		dsn:      dsn,
		store:    st,
		counters: stats.NewCounters(),
		reg:      prometheus.NewRegistry(),
		clock:    o.clock,
		logs:     &logLines{},
	}
	p.log = slog.New(slog.NewJSONHandler(p.logs, nil))
	var counts interface {
		CountStore
		ChangeStore
		stats.Sink
	} = st
	if o.storeLead != 0 {
		counts = skewedStore{st, o.storeLead}
	}
	p.reports = &Reports{Counts: counts, Flush: func(ctx context.Context) error { return p.counters.Flush(ctx, counts, p.clock.Now()) }}
	p.flags, err = NewFlags(context.Background(), cfg, st, nil, p.reports, applyFunc(func(c *config.Config) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.applied = append(p.applied, c)
		return nil
	}), p.log, p.clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	tokens := &Tokens{}
	tokens.Set(cfg.Admin.AdminTokens())
	readiness := &Readiness{}
	readiness.Ready()
	p.rollouts = NewRollouts(p.flags, st, counts, tokens, p.log, p.clock.Now)
	p.proxies = &Proxies{}
	p.proxies.Set(cfg.Admin.TrustedProxies)
	p.admin = newAdmin(AdminDeps{
		Rollouts: p.rollouts, Proxies: p.proxies,
		Gatherer: p.reg, Registerer: p.reg, Readiness: readiness, Flags: p.flags, Tokens: tokens, Reports: p.reports,
		Audit: st, Repairs: st, Sessions: st, Samples: shadow.NewMemorySamples(10), Noise: func(string) []string { return nil },
		Live: p.counters, Log: p.log, Now: p.clock.Now, StoreLead: func() time.Duration { return o.storeLead },
	})
	p.Server = httptest.NewServer(p.admin.handler())
	t.Cleanup(p.Close)
	return p
}

// mode is the mode the router was last given for route.
func (p *plane) mode(route string) domain.Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	last := p.applied[len(p.applied)-1]
	for _, r := range last.Routes {
		if r.Name == route {
			return r.Mode
		}
	}
	return ""
}

// call sends a request to the admin API and decodes the JSON answer.
func (p *plane) call(t *testing.T, method, path, token, body string, header ...string) (*http.Response, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, p.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := p.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp, out
}

// logLines collects JSON log lines, safe for concurrent writers.
type logLines struct {
	mu  sync.Mutex
	buf strings.Builder
	// slow, when set, is how long writing a security line takes: a
	// slow log output, which holds a wrong token's check in flight
	// between its comparison and its release (slog writes one line at a
	// time, so the checks queue behind it).
	slow atomic.Int64
}

func (l *logLines) Write(b []byte) (int, error) {
	if d := time.Duration(l.slow.Load()); d > 0 && bytes.Contains(b, []byte(`"msg":"security"`)) {
		time.Sleep(d)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

// matching returns the lines logged so far whose msg is msg, decoded.
func (l *logLines) matching(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	text := l.buf.String()
	l.mu.Unlock()
	var out []map[string]any
	for line := range strings.Lines(text) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// text is everything logged so far.
func (l *logLines) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// auditActions lists the audit log's entries, newest first, as
// "actor action route".
func (p *plane) auditActions(t *testing.T) []string {
	t.Helper()
	entries, err := p.store.AuditLog(context.Background(), store.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.Actor + " " + e.Action + " " + e.Route
	}
	return out
}

// applyFunc is the Tables of a plane without a router: it applies each
// configuration with the function, and has no dual writes to hold back.
type applyFunc func(*config.Config) error

func (f applyFunc) Apply(cfg *config.Config) error { return f(cfg) }

func (applyFunc) HoldWrites() func() { return func() {} }

// twoReplicas starts two replicas of the control plane on one PostgreSQL
// store, on one clock, c.
func twoReplicas(t *testing.T) (a, b *plane, c *clock) {
	t.Helper()
	dsn := testdb.Postgres(t)
	c = &clock{t: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)}
	return newPlaneWith(t, planeOptions{dsn: dsn, clock: c}), newPlaneWith(t, planeOptions{dsn: dsn, clock: c}), c
}
