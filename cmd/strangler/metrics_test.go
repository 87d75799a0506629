package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/backfill"
	"strangler/config/configfile"
	"strangler/internal/filecap"
	"strangler/metrics"
	"strangler/store"
)

// TestEveryRegisteredMetricIsListed builds the registries of a serving
// facade (as serve does: facade, admin listener, reloader) and of the
// backfill and verify commands, and checks that every strangler_ metric
// they register is in metrics.All and the README's metrics section, and
// that every metric in All is registered by one of them. metrics.All is
// kept by hand: a metric left out of it would otherwise go unchecked and
// undocumented.
func TestEveryRegisteredMetricIsListed(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := writeConfig(t, "", "http://127.0.0.1:1", "http://127.0.0.1:1", `  - { name: get-patient, match: "GET /patients/{id}", mode: legacy }
`)
	env := configfile.Env{Getenv: noEnv, ReadFile: filecap.Read}
	cfg, err := configfile.Load(path, env)
	if err != nil {
		t.Fatal(err)
	}
	log, err := newLogger(io.Discard, noEnv)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Start(ctx, string(cfg.Store), log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rl := &reloader{path: path, env: env, log: log}
	f, err := newFacade(ctx, cfg, st, log, facadeOptions{reloader: rl, adminNow: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer signal.Stop(rl.hup) // prepared to catch SIGHUP, which run would stop
	ln, err := listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.close()
	if _, err := f.servers(ln); err != nil {
		t.Fatal(err)
	}
	backfillReg := prometheus.NewRegistry()
	backfill.NewMetrics(backfillReg)

	registered := map[string]bool{}
	for _, reg := range []*prometheus.Registry{f.reg, backfillReg} {
		for _, name := range describedNames(reg) {
			if strings.HasPrefix(name, "strangler_") {
				registered[name] = true
			}
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, d := range metrics.All {
		listed[d.Name] = true
		if !registered[d.Name] {
			t.Errorf("%s is in metrics.All, but neither the facade nor the backfill registers it", d.Name)
		}
	}
	for name := range registered {
		if !listed[name] {
			t.Errorf("%s is registered, but not in metrics.All", name)
		}
		if !strings.Contains(string(readme), "`"+name+"`") {
			t.Errorf("%s is registered, but the README does not list it", name)
		}
	}
}

var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

// describedNames lists the names of the metrics reg holds, from their
// descriptions: a labelled metric with no series yet is left out of a
// scrape, not of these.
func describedNames(reg *prometheus.Registry) []string {
	ch := make(chan *prometheus.Desc)
	go func() {
		reg.Describe(ch)
		close(ch)
	}()
	var names []string
	for d := range ch {
		if m := descName.FindStringSubmatch(d.String()); m != nil && !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	return names
}
