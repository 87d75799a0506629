package backfill

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
)

// Some answers are about the run, not the row: the service gone, its
// credentials refused, its certificate not trusted, a path it does not
// serve. Taken row by row, each would have every row left tried and
// failed the same way: a table's worth of futile requests, a report that
// is a wall of failures, and a ledger of failures that were never the
// rows'. outage stops the table instead, with one message saying what
// came back, and the rows not sent stay unsent, for a plain re-run to
// send once the service or the configuration is fixed.

// outage watches a table's rows across the groups sending them, and
// stops the table's context with a serviceStop error at an answer about
// the run (runVerdict), or when limit rows in a row got no answer, or
// limit rows in a row got the same answer about the endpoint
// (endpointVerdict).
type outage struct {
	service string
	limit   int
	stop    context.CancelCauseFunc

	mu     sync.Mutex
	silent int // rows in a row without an answer
	// same rows in a row were answered status, an endpoint verdict.
	same   int
	status int
}

// serviceStop is the error of a table stopped by outage. It wraps no
// network error: resuming must not take it for a lost connection to try
// again.
type serviceStop struct {
	service string
	why     string
}

func (e *serviceStop) Error() string {
	return fmt.Sprintf("stopped: the modern service at %s %s; the rows not sent are left for a re-run", e.service, e.why)
}

// watchingService runs f with a context that outage stops, and returns
// the serviceStop error if it did: whatever f returned then is only how
// the stop reached it (a cancelled request, a cancelled read).
func (r *apiRunner) watchingService(ctx context.Context, t *apiTable, f func(context.Context, *outage) error) error {
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	o := &outage{service: serviceName(r.cfg.API.URL), limit: t.api.StopAfterUnanswered, stop: stop}
	err := f(ctx, o)
	if s := (*serviceStop)(nil); errors.As(context.Cause(ctx), &s) {
		return s
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

// row counts a row that was sent: answered (by any attempt) or not, and
// what its last attempt got.
func (o *outage) row(answered bool, a answer, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if why := runVerdict(a, err); why != "" {
		o.stop(&serviceStop{service: o.service, why: why})
		return
	}
	if !answered {
		o.silent++
		o.same = 0
		if o.silent == o.limit {
			saw := fmt.Sprintf("%d %s", a.status, http.StatusText(a.status))
			if err != nil {
				saw = err.Error()
			}
			o.stop(&serviceStop{service: o.service, why: fmt.Sprintf("answered none of the last %d rows (last: %s)", o.silent, saw)})
		}
		return
	}
	o.silent = 0
	switch {
	case endpointVerdict(a) == "":
		o.same = 0
	case a.status == o.status:
		o.same++
	default:
		o.status, o.same = a.status, 1
	}
	if o.same == o.limit {
		o.stop(&serviceStop{service: o.service, why: fmt.Sprintf("answered %d %s to each of the last %d rows: %s",
			a.status, http.StatusText(a.status), o.same, endpointVerdict(a))})
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

// runVerdict says what an attempt's outcome says about the whole run, or
// "" when it may be about the row: credentials refused (no row is
// refused them alone), or a certificate that is not trusted. Either
// stops the run at once, and the attempt is not retried.
func runVerdict(a answer, err error) string {
	var cert *tls.CertificateVerificationError
	switch {
	case errors.As(err, &cert):
		return "has a certificate this host does not trust (" + err.Error() + ")"
	case err != nil:
		return ""
	case a.status == http.StatusUnauthorized:
		return "refused the run's credentials (401 Unauthorized): renew them in api.headers"
	case a.status == http.StatusProxyAuthRequired:
		return "is behind a proxy that asked for credentials (407 Proxy Authentication Required)"
	}
	return ""
}

// endpointVerdict says what an answer means when it is the answer to
// every row, or "" for an answer about the row. Any one of these may be
// about its row (a redirect of a merged patient's resource, a 404 of a
// parent not there); stop_after_unanswered rows in a row answered the
// same say the method, path or URL is wrong for the table, and sending
// the rest would only fail each of them the same way.
func endpointVerdict(a answer) string {
	switch {
	case a.status/100 == 3:
		to := "the same host"
		if a.redirect != "" {
			to = a.redirect
		}
		return "it redirects them (to " + to + "), and a backfill follows no redirect: point api.url at the service itself"
	case a.status == http.StatusForbidden:
		return "the run's credentials may not send them (api.headers)"
	case a.status == http.StatusNotFound || a.status == http.StatusMethodNotAllowed:
		return "check api.url and the table's target_api method and path"
	case a.status == http.StatusUnsupportedMediaType:
		return "it takes no JSON body at the table's target_api path"
	}
	return ""
}
