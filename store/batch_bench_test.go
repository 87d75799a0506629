package store

import (
	"context"
	"database/sql"
	"runtime"
	"testing"
	"time"
)

// BenchmarkAWriteAfterALazyOne measures a write on the request path that
// comes while a lazy write (a delivery's result) waits for company, as on
// a quiet facade the next dual write's intent comes within lazyWait of
// the last one's delivery: the two commit in one transaction. Both
// change nothing, so what is measured is the batching around them.
func BenchmarkAWriteAfterALazyOne(b *testing.B) {
	bt := startBatcher(b, time.Hour)
	ctx := context.Background()
	nothing := func(*sql.Tx) error { return nil }
	b.ReportAllocs()
	for b.Loop() {
		lazy := &batchOp{ctx: ctx, fn: nothing, lazy: true, done: make(chan error, 1)}
		bt.ops <- lazy
		for bt.held() == 0 {
			runtime.Gosched()
		}
		write := &batchOp{ctx: ctx, fn: nothing}
		done, err := bt.commitAlone(write)
		if !done {
			write.done = make(chan error, 1)
			bt.ops <- write
			err = <-write.done
		}
		if err != nil {
			b.Fatal(err)
		}
		if err := <-lazy.done; err != nil {
			b.Fatal(err)
		}
	}
}
