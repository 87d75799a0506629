package dualwrite

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"strangler/config"
	"strangler/domain"
	"strangler/internal/testkit"
)

func TestADeliveryCarriesTheWriteTheKeyAndThePrimarysAnswer(t *testing.T) {
	for _, primary := range []domain.Backend{domain.Legacy, domain.Modern} {
		t.Run("primary "+string(primary), func(t *testing.T) {
			r := newRig(t, sqlite(t), testSettings)
			secondary, other := r.modern, r.legacy
			if primary == domain.Modern {
				secondary, other = r.legacy, r.modern
			}
			in := put("w1", "7", `{"v":1}`)
			in.Primary = primary
			r.journal(in, domain.Outcome{Status: 201, Location: "/items/7", PrimaryID: "p-7"})
			r.deliverDue(r.w)

			if other.Hits() != 0 || secondary.Hits() != 1 {
				t.Fatalf("the primary got %d deliveries and the secondary %d, want 0 and 1", other.Hits(), secondary.Hits())
			}
			got := secondary.Last(t)
			if got.Method != http.MethodPut || got.Path != "/items/7" || got.RawQuery != "notify=1" || string(got.Body) != `{"v":1}` {
				t.Errorf("the secondary got %s %s?%s %q, want PUT /items/7?notify=1 {\"v\":1}", got.Method, got.Path, got.RawQuery, got.Body)
			}
			for name, want := range map[string]string{
				"Idempotency-Key":              "w1",
				"X-Strangler-Primary-Status":   "201",
				"X-Strangler-Primary-Location": "/items/7",
				"X-Strangler-Primary-Id":       "p-7",
				"Content-Type":                 "application/json",
				"X-Request-Id":                 "req-w1",
			} {
				if v := got.Header.Get(name); v != want {
					t.Errorf("%s: got %q, want %q", name, v, want)
				}
			}
			if st := r.repair("w1").State; st != domain.StateDone {
				t.Errorf("the write is %s after the secondary applied it, want done", st)
			}
			if n := r.count("put-item", "applied"); n != 1 {
				t.Errorf("applied counted %v times, want 1", n)
			}
		})
	}
	t.Run("a primary that named no location or id sends neither header", func(t *testing.T) {
		r := newRig(t, sqlite(t), testSettings)
		r.journal(put("w1", "7", `{}`), domain.Outcome{Status: 204})
		r.deliverDue(r.w)
		h := r.modern.Last(t).Header
		if h.Get("X-Strangler-Primary-Status") != "204" || h.Values("X-Strangler-Primary-Location") != nil || h.Values("X-Strangler-Primary-Id") != nil {
			t.Errorf("got headers %v, want X-Strangler-Primary-Status: 204 alone", h)
		}
	})
	t.Run("a secondary's base path prefixes the write's path", func(t *testing.T) {
		r := newRig(t, sqlite(t), testSettings)
		r.routes.setBackend(t, "modern", r.modern.URL+"/api/v2/", 2*time.Second)
		r.journal(put("w1", "7", `{}`), domain.Outcome{Status: 200})
		r.deliverDue(r.w)
		if got := r.modern.Last(t); got.Path != "/api/v2/items/7" || got.RawQuery != "notify=1" {
			t.Errorf("the secondary got %s?%s, want /api/v2/items/7?notify=1", got.Path, got.RawQuery)
		}
	})
}

func TestTheKeyIsTheClientsOnlyWhereThePrimaryHonoursKeys(t *testing.T) {
	for _, tc := range []struct {
		idempotent bool
		want       string
	}{{true, "client-key"}, {false, "w1"}} {
		t.Run(fmt.Sprintf("primary_idempotent %v", tc.idempotent), func(t *testing.T) {
			r := newRig(t, sqlite(t), testSettings)
			r.routes.dualWrite["put-item"] = routeSettings{idempotent: tc.idempotent}
			in := put("w1", "7", `{}`)
			in.Header.Set("Idempotency-Key", "client-key")
			r.journal(in, domain.Outcome{Status: 200})
			r.deliverDue(r.w)
			if got := r.modern.Last(t).Header.Values("Idempotency-Key"); len(got) != 1 || got[0] != tc.want {
				t.Errorf("Idempotency-Key: got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFailedDeliveriesBackOffUntilMaxAttemptsThenAreDead(t *testing.T) {
	s := testSettings
	s.MaxAttempts, s.Backoff, s.MaxBackoff = 3, config.Duration(10*time.Second), config.Duration(time.Minute)
	r := newRig(t, sqlite(t), s)
	r.modern.SetHandler(testkit.Answer(http.StatusServiceUnavailable, `{"error":"busy"}`))
	r.journal(put("w1", "secret-patient-42", `{"name":"Jane Roe"}`), domain.Outcome{Status: 200})

	// Each failure is retried after a backoff that doubles (±50%), and
	// not before it.
	// The store's clock runs at the real time's pace; a few seconds of
	// slack keep a busy machine from failing the test.
	const slack = 3 * time.Second
	for attempt, wait := range []time.Duration{10 * time.Second, 20 * time.Second} {
		r.deliverDue(r.w)
		rep := r.repair("w1")
		if rep.State != domain.StatePending || rep.Attempts != attempt+1 {
			t.Fatalf("after failure %d: %s with %d attempts, want pending with %d", attempt+1, rep.State, rep.Attempts, attempt+1)
		}
		if due := r.dueIn("w1"); due < wait/2-slack || due >= wait*3/2 {
			t.Errorf("after failure %d: due again in %v, want %v ± 50%%", attempt+1, due, wait)
		}
		hits := r.modern.Hits()
		r.advance(r.dueIn("w1") - slack)
		r.deliverDue(r.w)
		if r.modern.Hits() != hits {
			t.Fatalf("after failure %d: delivered again before its backoff passed", attempt+1)
		}
		r.advance(slack)
	}
	r.deliverDue(r.w)
	rep := r.repair("w1")
	if rep.State != domain.StateDead || rep.Attempts != 3 || !strings.Contains(rep.LastError, "503") {
		t.Errorf("after max_attempts (3) failures: %s, %d attempts, last error %q; want dead, 3, naming the 503", rep.State, rep.Attempts, rep.LastError)
	}
	if failed, dead := r.count("put-item", "failed"), r.count("put-item", "dead"); failed != 2 || dead != 1 {
		t.Errorf("counted %v failed and %v dead, want 2 and 1", failed, dead)
	}
	lines := r.logs.Lines(t, "dual write dead-lettered; an operator must retry or discard it")
	if len(lines) != 1 || lines[0]["id"] != "w1" || lines[0]["route"] != "put-item" {
		t.Errorf("dead-letter log lines: %v, want one naming the route and the id", lines)
	}
	for _, secret := range []string{"secret-patient-42", "Jane Roe", "busy"} {
		if strings.Contains(r.logs.String(), secret) || strings.Contains(rep.LastError, secret) {
			t.Errorf("%q, from the write's path, its body or the secondary's answer, is in the logs or the last error", secret)
		}
	}
	// A dead write is never delivered again on its own.
	hits := r.modern.Hits()
	r.advance(time.Hour)
	r.deliverDue(r.w)
	if r.modern.Hits() != hits {
		t.Error("a dead write was delivered again")
	}
}

func TestWhatTheSecondarySaysDecidesTheWritesFate(t *testing.T) {
	for _, tc := range []struct {
		method string
		status int
		want   domain.State
	}{
		{http.MethodPut, 400, domain.StateDead},
		{http.MethodPut, 404, domain.StateDead},
		{http.MethodPut, 409, domain.StateDead},
		{http.MethodPut, 422, domain.StateDead},
		{http.MethodPut, 408, domain.StatePending},
		{http.MethodPut, 429, domain.StatePending},
		{http.MethodPut, 500, domain.StatePending},
		{http.MethodPut, 502, domain.StatePending},
		// A redirect (to a login page, say) did not apply the write.
		{http.MethodPut, 302, domain.StatePending},
		{http.MethodPut, 303, domain.StatePending},
		{http.MethodPut, 200, domain.StateDone},
		{http.MethodPut, 201, domain.StateDone},
		{http.MethodDelete, 204, domain.StateDone},
		{http.MethodDelete, 404, domain.StateDone},
		{http.MethodDelete, 410, domain.StateDone},
		{http.MethodDelete, 400, domain.StateDead},
	} {
		t.Run(fmt.Sprintf("%s answered %d is %s", tc.method, tc.status, tc.want), func(t *testing.T) {
			r := newRig(t, sqlite(t), testSettings)
			r.modern.SetHandler(testkit.Answer(tc.status, `{}`))
			in := put("w1", "7", `{}`)
			in.Method = tc.method
			r.journal(in, domain.Outcome{Status: 200})
			r.deliverDue(r.w)
			if rep := r.repair("w1"); rep.State != tc.want || rep.Attempts != map[bool]int{true: 0, false: 1}[tc.want == domain.StateDone] {
				t.Errorf("got %s after %d failed attempts (%q)", rep.State, rep.Attempts, rep.LastError)
			}
		})
	}
}

func TestASecondaryThatDoesNotAnswerIsRetried(t *testing.T) {
	for name, set := range map[string]func(r *rig){
		"refuses connections": func(r *rig) { r.routes.setBackend(r.t, "modern", testkit.DeadURL(r.t), time.Second) },
		"times out": func(r *rig) {
			r.modern.SetHandler(func(w http.ResponseWriter, req *http.Request) { <-req.Context().Done() })
			r.routes.setBackend(r.t, "modern", r.modern.URL, 100*time.Millisecond)
		},
		// net/http quotes what it cannot parse; those bytes are the
		// backend's, perhaps a patient's record, and stay out of the
		// stored error.
		"answers what is not HTTP": func(r *rig) {
			r.routes.setBackend(r.t, "modern", garbleBackend(r.t, "HTTP/1.1 200 OK\r\nsecret-patient-42 Ada\r\n\r\n"), time.Second)
		},
	} {
		t.Run("a secondary that "+name, func(t *testing.T) {
			r := newRig(t, sqlite(t), testSettings)
			set(r)
			r.journal(put("w1", "secret-patient-42", `{}`), domain.Outcome{Status: 200})
			r.deliverDue(r.w)
			rep := r.repair("w1")
			if rep.State != domain.StatePending || rep.Attempts != 1 || !strings.Contains(rep.LastError, "did not answer") {
				t.Errorf("got %s, %d attempts, last error %q; want pending, 1, saying it did not answer", rep.State, rep.Attempts, rep.LastError)
			}
			if strings.Contains(rep.LastError, "secret-patient-42") {
				t.Errorf("the last error %q holds the write's path", rep.LastError)
			}
		})
	}
}

func TestADeadWriteHoldsBackItsResourceAndNothingElse(t *testing.T) {
	r := newRig(t, sqlite(t), testSettings)
	r.modern.SetHandler(func(w http.ResponseWriter, req *http.Request) {
		if strings.Contains(req.URL.Path, "poison") {
			w.WriteHeader(http.StatusBadRequest)
		}
	})
	r.journal(put("w1", "poison", `{"v":1}`), domain.Outcome{Status: 200})
	r.journal(put("w2", "poison", `{"v":2}`), domain.Outcome{Status: 200})
	r.journal(put("w3", "other", `{"v":1}`), domain.Outcome{Status: 200})
	r.deliverDue(r.w)
	r.advance(time.Hour)
	r.deliverDue(r.w)
	for id, want := range map[string]domain.State{"w1": domain.StateDead, "w2": domain.StatePending, "w3": domain.StateDone} {
		if got := r.repair(id).State; got != want {
			t.Errorf("%s: got %s, want %s", id, got, want)
		}
	}
	for _, req := range r.modern.Requests() {
		if req.Header.Get("Idempotency-Key") == "w2" {
			t.Error("the write after a dead one to the same resource was delivered")
		}
	}
	// An operator discards the dead write: the next one goes.
	if err := r.store.DiscardRepair(context.Background(), "w1", domain.AuditEntry{Action: "repair_discard"}); err != nil {
		t.Fatal(err)
	}
	r.modern.SetHandler(testkit.Answer(200, `{}`))
	r.deliverDue(r.w)
	if got := r.repair("w2").State; got != domain.StateDone {
		t.Errorf("w2 after the dead write was discarded: %s, want done", got)
	}
}

func TestTheDepthGaugeCountsEachOpenState(t *testing.T) {
	r := newRig(t, sqlite(t), testSettings)
	r.modern.SetHandler(testkit.Answer(http.StatusBadRequest, `{}`))
	r.journal(put("dead", "a", `{}`), domain.Outcome{Status: 200})
	r.deliverDue(r.w)
	r.journal(put("p1", "a", `{}`), domain.Outcome{Status: 200})
	r.journal(put("p2", "b", `{}`), domain.Outcome{Status: 200})
	ctx := context.Background()
	if err := r.store.BeginWrite(ctx, put("sent", "c", `{}`), time.Hour); err != nil {
		t.Fatal(err)
	}
	r.w.updateDepth(ctx)
	m := testkit.Gather(t, r.reg)
	for state, want := range map[string]float64{"pending": 2, "dead": 1, "sent": 1, "unknown": 0} {
		if got := m.Value("strangler_repair_queue_depth", "state", state); got != want {
			t.Errorf("strangler_repair_queue_depth{state=%q} = %v, want %v", state, got, want)
		}
	}
}

// TestAnIDNoHeaderCanCarryMakesTheWriteDeadAtOnce: the id_field value
// comes from the primary's JSON, where "\n" is easily written; no request
// can carry it in X-Strangler-Primary-Id. Such a write is dead at once
// with a reason that names the header (not the id, which may be a record
// number), instead of being retried for hours as "did not answer" while
// later writes to its resource wait (found by the red team).
func TestAnIDNoHeaderCanCarryMakesTheWriteDeadAtOnce(t *testing.T) {
	for _, o := range []domain.Outcome{
		{Status: 201, PrimaryID: "7\nX-Injected: 1"},
		{Status: 201, PrimaryID: "7\x01"},
		{Status: 201, Location: "/items/7\x7f"},
	} {
		r := newRig(t, sqlite(t), testSettings)
		var reached atomic.Int64
		r.modern.SetHandler(func(w http.ResponseWriter, req *http.Request) {
			reached.Add(1)
			w.WriteHeader(http.StatusCreated)
		})
		r.journal(put("w1", "7", `{}`), o)
		r.deliverDue(r.w)
		rep := r.repair("w1")
		if rep.State != domain.StateDead || !strings.Contains(rep.LastError, "X-Strangler-Primary-") {
			t.Errorf("%q: got %s (%q), want dead naming the header", o.PrimaryID+o.Location, rep.State, rep.LastError)
		}
		if strings.Contains(rep.LastError, "7\n") || strings.Contains(rep.LastError, "7\x01") {
			t.Errorf("the reason %q quotes the id", rep.LastError)
		}
		if reached.Load() != 0 {
			t.Errorf("%q: the secondary received %d requests", o.PrimaryID+o.Location, reached.Load())
		}
	}
	// An id any header can carry, non-ASCII included, is sent.
	r := newRig(t, sqlite(t), testSettings)
	got := make(chan string, 1)
	r.modern.SetHandler(func(w http.ResponseWriter, req *http.Request) {
		got <- req.Header.Get("X-Strangler-Primary-Id")
		w.WriteHeader(http.StatusCreated)
	})
	r.journal(put("w1", "7", `{}`), domain.Outcome{Status: 201, PrimaryID: "Åse-7"})
	r.deliverDue(r.w)
	if rep := r.repair("w1"); rep.State != domain.StateDone {
		t.Errorf("got %s (%q), want done", rep.State, rep.LastError)
	}
	if id := <-got; id != "Åse-7" {
		t.Errorf("the secondary got id %q", id)
	}
}

// garbleBackend answers every request with answer, raw, and closes the
// connection; it returns its URL.
func garbleBackend(t *testing.T, answer string) string {
	t.Helper()
	addr := testkit.ServeConns(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			io.WriteString(c, answer)
		}
	})
	return "http://" + addr
}
