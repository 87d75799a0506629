package backfill

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
)

// A modern service that goes away mid-run would otherwise have every row
// left tried max_attempts times and failed as retries_exhausted: at the
// defaults some 0.7 rows a second, weeks of futile requests for a large
// table, and a report that is a wall of failures. outage stops the table
// instead once stop_after_unanswered rows in a row got no answer, and
// the rows not sent stay unsent, for a plain re-run to send.

// outage counts a table's rows in a row that got no answer from the
// service, across the groups sending them, and stops the table's context
// with a serviceGone error when they reach limit.
type outage struct {
	service string
	limit   int
	stop    context.CancelCauseFunc

	mu     sync.Mutex
	silent int // rows in a row without an answer
}

// serviceGone is the error of a table stopped by outage. It wraps no
// network error: resuming must not take it for a lost connection to try
// again.
type serviceGone struct {
	service string
	rows    int
	last    string
}

func (e *serviceGone) Error() string {
	return fmt.Sprintf("stopped: the modern service at %s answered none of the last %d rows (last: %s); the rows not sent are left for a re-run",
		e.service, e.rows, e.last)
}

// watchingService runs f with a context that outage stops, and returns
// the serviceGone error if it did: whatever f returned then is only how
// the stop reached it (a cancelled request, a cancelled read).
func (r *apiRunner) watchingService(ctx context.Context, t *apiTable, f func(context.Context, *outage) error) error {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	o := &outage{service: serviceName(r.cfg.API.URL), limit: t.api.StopAfterUnanswered, stop: stop}
	err := f(ctx, o)
	if gone := (*serviceGone)(nil); errors.As(context.Cause(ctx), &gone) {
		return gone
	}
	return err
}

// serviceName is the service's URL as an error may show it: its scheme
// and host, without a user, password or path.
func serviceName(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "api.url"
	}
	return u.Scheme + "://" + u.Host
}

// row counts a row that was sent: answered, or not, saw saying what its
// last attempt got.
func (o *outage) row(answered bool, saw string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if answered {
		o.silent = 0
		return
	}
	o.silent++
	if o.silent == o.limit {
		o.stop(&serviceGone{service: o.service, rows: o.silent, last: saw})
	}
}

// unanswered reports whether an attempt got no answer from the service
// itself: no HTTP answer at all, or a gateway's in front of it saying it
// could not reach the service (502, 504) or has none to send to (503). A
// 503 from the service itself reads the same; one that keeps answering
// 503 to every row is as unable to take them.
func unanswered(a answer, err error) bool {
	return err != nil || a.status == http.StatusBadGateway || a.status == http.StatusServiceUnavailable || a.status == http.StatusGatewayTimeout
}
