package store

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"strangler/domain"
)

// BenchmarkDualWriteJournal measures the SQLite store's part in a dual
// write: the intent, the primary's answer leased to the local worker, the
// delivery's completion, which the worker records from a goroutine of its
// own while the request path goes on. cpu-µs/write, the process's CPU
// time per write, is the figure to compare: alone, one write at a time
// on the request path (a quiet facade); concurrent, writes share commits
// (a busy one).
func BenchmarkDualWriteJournal(b *testing.B) {
	for _, tc := range []struct {
		name        string
		parallelism int
	}{{"alone", 0}, {"concurrent", 8}} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(ctx, "sqlite:"+filepath.Join(b.TempDir(), "s.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var n atomic.Int64
			var delivered sync.WaitGroup
			var failed atomic.Pointer[error]
			write := func() error {
				// Each call has a deadline, as the facade's calls do.
				ctx, cancel := context.WithTimeout(ctx, time.Minute)
				defer cancel()
				i := n.Add(1)
				// Ids that grow with time, as the router's do.
				id := fmt.Sprintf("%08x-0000-7000-8000-%012x", time.Now().Unix(), i)
				in := domain.Intent{ID: id, Route: "create-record", Resource: "/records", ResourceView: "/records",
					Method: http.MethodPost, Target: "/records", Primary: domain.Legacy,
					Header: http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {id}},
					Body:   []byte(`{"first_name":"Patient","last_name":"Number7","born":"1970-01-01","city":"Oslo"}`)}
				if err := s.BeginWrite(ctx, in, time.Minute); err != nil {
					return err
				}
				created := fmt.Sprintf("/records/%d", i)
				o := domain.Outcome{Status: http.StatusCreated, Resource: created, ResourceView: "/records/{id}", Location: created}
				if leased, err := s.RecordOutcomeLeased(ctx, id, o, "worker", time.Minute); err != nil || !leased {
					return fmt.Errorf("record outcome: leased %v, %v", leased, err)
				}
				delivered.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					if err := s.CompleteRepair(ctx, id, "worker"); err != nil {
						failed.Store(&err)
					}
				})
				return nil
			}
			start := cpuTime()
			b.ResetTimer()
			if tc.parallelism == 0 {
				for b.Loop() {
					if err := write(); err != nil {
						b.Fatal(err)
					}
				}
			} else {
				b.SetParallelism(tc.parallelism)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if err := write(); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			delivered.Wait()
			if err := failed.Load(); err != nil {
				b.Fatal(*err)
			}
			b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/write")
		})
	}
}

// cpuTime is the CPU time this process used so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
