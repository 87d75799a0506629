package control

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"strangler/config/configfile"
	"strangler/internal/testdb"
	"strangler/router"
	"strangler/store"
)

// BenchmarkFollows measures the lease check every write a replica of a
// PostgreSQL store sends straight to a backend pays (Follows), with the
// lease current: the case of every write of a replica that follows the
// store. Run with -benchtime=Nx under callgrind to count its instructions.
func BenchmarkFollows(b *testing.B) {
	ctx := context.Background()
	cfg, err := configfile.Parse("bench.yaml", fmt.Appendf(nil, `
backends:
  legacy: { url: "http://127.0.0.1:1" }
  modern: { url: "http://127.0.0.1:2" }
`+legacyWrites), configfile.Env{Getenv: func(string) string { return "" }})
	if err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, testdb.Postgres(b), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	log := slog.New(slog.DiscardHandler)
	rtr := router.New(router.Deps{Metrics: router.NewMetrics(prometheus.NewRegistry()), Log: log})
	f, err := NewFlags(ctx, cfg, st, nil, &Reports{Counts: st}, rtr, log, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	// It follows the store as serve runs it, so the lease stays current
	// however long the benchmark runs.
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	<-f.Watching()
	b.ReportAllocs()
	for b.Loop() {
		if current, _ := f.Follows(ctx); !current {
			b.Fatal("the lease lapsed during the benchmark")
		}
	}
}
