package router

import (
	"context"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"strangler/domain"
)

// countSink takes flushed counts as the state store would.
// countSink adds up the requests flushed to it, and those of them the
// retirement verdict counts as served by modern.
type countSink struct{ requests, modernServed int64 }

func (s *countSink) AddCounts(_ context.Context, cs []domain.HourCount) error {
	for _, c := range cs {
		s.requests += c.Requests
		s.modernServed += c.Modern - c.ModernFailed
	}
	return nil
}

func (s *countSink) AddLegacyClients(context.Context, []domain.ClientCount) error { return nil }

// heapBytes is what the heap holds after a collection.
func heapBytes() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestRoutesAReloadRemovesAreForgottenOnceFlushed: 1,000 routes had
// traffic, and a reload leaves one of them. Once the counts are flushed
// (all of them reach the store), the removed routes' counters are
// freed: they were kept for good, 12 KB a route.
func TestRoutesAReloadRemovesAreForgottenOnceFlushed(t *testing.T) {
	const n = 1000
	legacy := newBackend(t, answer(200, `{}`))
	var routes strings.Builder
	for i := range n {
		fmt.Fprintf(&routes, "  - {name: r%d, match: 'GET /r%d', mode: legacy}\n", i, i)
	}
	f := newFacade(t, legacy.URL, legacy.URL, "", routes.String())
	base := heapBytes()
	req := &http.Request{Header: http.Header{}}
	for name, rt := range f.router.table.Load().byName {
		if name != "r0" {
			rt.stats.Request(time.Now(), "legacy", req)
		}
	}
	resp, err := http.Get(f.URL + "/r0")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	held := heapBytes() - base
	table, err := f.router.Build(testConfig(t, legacy.URL, legacy.URL, "", "  - {name: r0, match: 'GET /r0', mode: legacy}\n"))
	if err != nil {
		t.Fatal(err)
	}
	f.router.Swap(table)
	sink := &countSink{}
	if err := f.router.deps.Stats.Flush(context.Background(), sink, time.Now()); err != nil {
		t.Fatal(err)
	}
	left := int64(heapBytes()) - int64(base)
	t.Logf("%d routes with traffic, %d removed: %d KB held, %d KB after the reload and a flush", n, n-1, held/1024, left/1024)
	if left > int64(held/10) {
		t.Errorf("the %d routes removed still hold %d KB after a flush (%d KB before), want under a tenth", n-1, left/1024, held/1024)
	}
	if sink.requests != n {
		t.Errorf("the store got %d requests, want %d", sink.requests, n)
	}
	if w := f.router.deps.Stats.Window("r0", time.Now(), time.Minute); w.Requests != 1 {
		t.Errorf("the route kept counts %d requests in its last minute, want 1", w.Requests)
	}
}
