package backfill

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/config"
	"strangler/internal/testkit"
	"strangler/upstream"
)

// TestAnAPIRunUsesAConnectionForAtMostItsMaximumAge: a backfill runs for
// hours at a steady pace, so its connections to the modern service are
// never idle long enough to be closed. Each is used for at most
// upstream.DefaultMaxConnAge, as the facade's backends are: the request
// that finds it older closes it once answered (HTTP/1.1), or is its last
// (HTTP/2), and the next request dials, resolving the service's name
// again, so that a service whose DNS name moved is followed. Before, one
// connection carried every request of the run.
func TestAnAPIRunUsesAConnectionForAtMostItsMaximumAge(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		name := "HTTP/1.1"
		if h2 {
			name = "HTTP/2 over TLS"
		}
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			opened, closed := map[net.Conn]bool{}, map[net.Conn]bool{}
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
				if h2 && r.ProtoMajor != 2 {
					t.Errorf("a request over %s, want HTTP/2", r.Proto)
				}
				rw.Header().Set("Content-Type", "application/json")
				rw.Write([]byte(`{}`))
			}))
			srv.Config.ConnState = func(c net.Conn, s http.ConnState) {
				mu.Lock()
				defer mu.Unlock()
				switch s {
				case http.StateNew:
					opened[c] = true
				case http.StateClosed, http.StateHijacked:
					closed[c] = true
				}
			}
			if h2 {
				srv.EnableHTTP2 = true
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			c := newAPIClient(&config.BackfillAPI{URL: srv.URL, Timeout: config.Duration(5 * time.Second)})
			aging := c.http.Transport.(*agingTransport)
			clock := testkit.NewClock(time.Date(2026, 12, 7, 3, 0, 0, 0, time.UTC))
			aging.now = clock.Now
			if h2 {
				aging.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
			}
			send := func() {
				t.Helper()
				a, err := c.do(context.Background(), http.MethodPut, "/imports/patients/1", []byte(`{}`), "patients:1")
				if err != nil || !a.accepted() {
					t.Fatalf("the request: %+v, %v", a, err)
				}
			}
			counts := func() (int, int) {
				mu.Lock()
				defer mu.Unlock()
				return len(opened), len(closed)
			}

			for range 3 {
				send()
			}
			if o, _ := counts(); o != 1 {
				t.Fatalf("%d connections for 3 requests in a row, want 1", o)
			}
			clock.Advance(upstream.DefaultMaxConnAge - time.Second)
			send()
			if o, _ := counts(); o != 1 {
				t.Fatalf("%d connections once the first is %s old, want it still used", o, upstream.DefaultMaxConnAge-time.Second)
			}
			clock.Advance(time.Second)
			send() // its last request
			testkit.Eventually(t, 10*time.Second, "the connection past its age closed", func() bool {
				_, cl := counts()
				return cl == 1
			})
			send()
			send()
			if o, cl := counts(); o != 2 || cl != 1 {
				t.Errorf("%d connections opened, %d closed; want the one past its age closed and one new one used", o, cl)
			}
		})
	}
}

// TestAnAPIAnswerCountsOnlyWhenItArrivesWhole: a 200 whose body stops
// before its end (the service failed after writing the status, a proxy
// cut it) or never ends says nothing of the row, however much of it
// came: it is no answer, retried under the same Idempotency-Key, and
// the row is not marked migrated. Before, a body longer than the 64 KiB
// kept of it was taken as accepted at its 64th KiB, whole or not; the
// run holds no more of it in memory now than then.
func TestAnAPIAnswerCountsOnlyWhenItArrivesWhole(t *testing.T) {
	chunk := make([]byte, 32<<10)
	for _, c := range []struct {
		name  string
		serve http.HandlerFunc
	}{
		{"cut off after 96 KiB of 192", func(rw http.ResponseWriter, r *http.Request) {
			rw.Header().Set("Content-Length", fmt.Sprint(6*len(chunk)))
			for range 3 {
				rw.Write(chunk)
			}
		}},
		{"never ending", func(rw http.ResponseWriter, r *http.Request) {
			for r.Context().Err() == nil {
				if _, err := rw.Write(chunk); err != nil {
					return
				}
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewUnstartedServer(c.serve)
			srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the short write
			srv.Start()
			defer srv.Close()
			cl := newAPIClient(&config.BackfillAPI{URL: srv.URL, Timeout: config.Duration(2 * time.Second)})
			a, err := cl.do(context.Background(), http.MethodPut, "/imports/patients/1", []byte(`{}`), "patients:1")
			if err == nil || !strings.Contains(err.Error(), "the answer (200) did not arrive whole") {
				t.Errorf("the answer: %+v, %v; want no answer, the body not whole", a, err)
			}
			if !retryable(a, err) || !unanswered(a, err) {
				t.Errorf("retryable %v, unanswered %v; want both", retryable(a, err), unanswered(a, err))
			}
		})
	}
}

// TestAnAPIAnswerWithAHugeHeadIsNoAnswer: a service (or something in
// front of it) answering with a head of a megabyte of fields would have
// each group in flight hold some thirty times that while it is parsed.
// Past 64 KiB, as the facade bounds a backend's, the head is no answer,
// retried like one; before, net/http's 10 MiB bound let it through, and
// its 200 marked the row migrated.
func TestAnAPIAnswerWithAHugeHeadIsNoAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		v := strings.Repeat("v", 500)
		for i := range 2000 {
			rw.Header().Set(fmt.Sprintf("X-Field-%d", i), v)
		}
		rw.Header().Set("Content-Type", "application/json")
		rw.Write([]byte(`{}`))
	}))
	defer srv.Close()
	cl := newAPIClient(&config.BackfillAPI{URL: srv.URL, Timeout: config.Duration(5 * time.Second)})
	a, err := cl.do(context.Background(), http.MethodPut, "/imports/patients/1", []byte(`{}`), "patients:1")
	if err == nil || !strings.Contains(err.Error(), "exceeded 65536 bytes") {
		t.Errorf("the answer: status %d, %v; want no answer, its head past 64 KiB", a.status, err)
	}
	if !retryable(a, err) {
		t.Errorf("not retryable, want it retried as no answer")
	}
}
