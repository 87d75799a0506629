package dualwrite

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"strangler/domain"
	"strangler/internal/testkit"
)

// abandon journals in as the facade does before calling the primary, with
// a lease that passed: the facade died before recording the answer.
func (r *rig) abandon(in domain.Intent) {
	r.t.Helper()
	if err := r.store.BeginWrite(context.Background(), r.asJournaled(in), -time.Second); err != nil {
		r.t.Fatal(err)
	}
}

// create is a journaled POST of an item.
func create(id string) domain.Intent {
	in := put(id, "", `{"name":"x"}`)
	in.Route, in.Method, in.Resource, in.Target = "create-item", http.MethodPost, "/items", "/items"
	return in
}

func TestRecoveryMarksAnAbandonedWriteUnknown(t *testing.T) {
	r := newRig(t, sqlite(t), testSettings)
	r.routes.dualWrite["put-item"] = routeSettings{} // its primary does not honour keys
	r.abandon(put("abandoned", "7", `{}`))
	if err := r.store.BeginWrite(context.Background(), put("in-flight", "8", `{}`), time.Minute); err != nil {
		t.Fatal(err)
	}
	r.w.recover(context.Background())
	if got := r.repair("abandoned").State; got != domain.StateUnknown {
		t.Errorf("a write whose lease passed before its answer was recorded: %s, want unknown", got)
	}
	if got := r.repair("in-flight").State; got != domain.StateSent {
		t.Errorf("a write whose lease runs: %s, want still sent", got)
	}
	if r.legacy.Hits()+r.modern.Hits() != 0 {
		t.Error("a write whose primary outcome is unknown was sent to a backend")
	}
	if n := r.count("put-item", "unknown"); n != 1 {
		t.Errorf("unknown counted %v times, want 1", n)
	}
	if lines := r.logs.Lines(t, "dual write outcome unknown; an operator must retry (if the primary applied it) or discard it"); len(lines) != 1 || lines[0]["id"] != "abandoned" {
		t.Errorf("log lines %v, want one naming the write", lines)
	}
}

func TestRecoveryResendsToAnIdempotentPrimaryWithTheKeyItSaw(t *testing.T) {
	for _, tc := range []struct {
		name, clientKey, wantKey string
	}{
		{"the client's key", "client-key", "client-key"},
		{"the facade's key, the write's id", "", "w1"},
	} {
		t.Run("a write sent with "+tc.name, func(t *testing.T) {
			r := newRig(t, sqlite(t), testSettings)
			r.routes.dualWrite["create-item"] = routeSettings{idField: "item.id", idempotent: true}
			r.legacy.SetHandler(func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Location", "/items/p-9")
				w.WriteHeader(http.StatusCreated)
				w.Write([]byte(`{"item":{"id":"p-9"}}`))
			})
			in := create("w1")
			if tc.clientKey != "" {
				in.Header.Set("Idempotency-Key", tc.clientKey)
			}
			r.abandon(in)
			r.w.recover(context.Background())

			got := r.legacy.Last(t)
			if got.Method != http.MethodPost || got.Path != "/items" || string(got.Body) != `{"name":"x"}` || got.Header.Get("Idempotency-Key") != tc.wantKey {
				t.Errorf("the primary got %s %s %q with key %q, want the write again with key %q", got.Method, got.Path, got.Body, got.Header.Get("Idempotency-Key"), tc.wantKey)
			}
			rep := r.repair("w1")
			if rep.State != domain.StatePending || rep.Outcome.Status != 201 || rep.Outcome.PrimaryID != "p-9" || rep.Outcome.Location != "/items/p-9" {
				t.Errorf("after the resend: %s %+v, want pending with the primary's 201, location and id p-9", rep.State, rep.Outcome)
			}
			if n := r.count("create-item", "queued"); n != 1 {
				t.Errorf("queued counted %v times, want 1", n)
			}
			// The recovered write is kicked: the secondary gets it now,
			// with the primary's answer.
			select {
			case id := <-r.w.kicks.ids:
				r.w.claimOne(context.Background(), id)
			default:
				t.Fatal("the recovered write was not kicked")
			}
			r.w.inflight.Wait()
			if h := r.modern.Last(t).Header; h.Get("X-Strangler-Primary-Id") != "p-9" || h.Get("X-Strangler-Primary-Status") != "201" {
				t.Errorf("the secondary got %v, want the primary's id and status", h)
			}
		})
	}
}

// TestARecoveredCreateOrdersTheWritesToWhatItMade: a create resent after a
// crash moves to the resource its answer names, as one recorded by the
// facade does: a DELETE of that resource journaled meanwhile waits behind
// it, or the secondary would get the DELETE (404, taken as applied) and
// then make the resource.
func TestARecoveredCreateOrdersTheWritesToWhatItMade(t *testing.T) {
	r := newRig(t, sqlite(t), testSettings)
	r.routes.dualWrite["create-item"] = routeSettings{idField: "id", idempotent: true}
	r.legacy.SetHandler(testkit.Answer(http.StatusCreated, `{"id":"9"}`))
	r.abandon(create("c1"))
	del := put("d1", "9", ``)
	del.Route, del.Method, del.Target = "delete-item", http.MethodDelete, "/items/9"
	r.w.recover(context.Background())
	// The DELETE's answer is recorded after the create's resend.
	r.journal(del, domain.Outcome{Status: 204})
	if c, d := r.repair("c1"), r.repair("d1"); c.ResourceKey != d.ResourceKey {
		t.Errorf("the recovered create's resource %s is not the DELETE's %s: it should be /items/9, what it made", c.Resource, d.Resource)
	}
	r.deliverDue(r.w)
	var order []string
	for _, req := range r.modern.Requests() {
		order = append(order, req.Method)
	}
	if len(order) != 1 || order[0] != http.MethodPost {
		t.Errorf("the secondary got %v first, want the create alone: the DELETE waits behind it", order)
	}
}

// TestRecoveryWithoutAnAnswerFromTheIdempotentPrimaryNeverSettlesIt: a
// resend the primary gives no answer on the write leaves the write sent,
// to be resent after a backoff, and unknown for an operator once
// repairs.max_attempts resends went unanswered; never skipped or queued
// without an answer. Before, the first unanswered resend made it unknown
// (1 resend, then an operator; now 5, testSettings.MaxAttempts).
func TestRecoveryWithoutAnAnswerFromTheIdempotentPrimaryNeverSettlesIt(t *testing.T) {
	for name, set := range map[string]func(r *rig){
		"is down": func(r *rig) { r.routes.setBackend(r.t, "legacy", testkit.DeadURL(r.t), time.Second) },
		// A primary restarting with the facade (the host rebooted), or
		// the gateway in front of it, says nothing of the write it may
		// have applied before the crash: settled skipped, such a write
		// never reached the secondary (1 of 1 lost before outage9).
		"answers 503 as it restarts":         func(r *rig) { r.legacy.SetHandler(testkit.Answer(http.StatusServiceUnavailable, `{}`)) },
		"is behind a gateway that times out": func(r *rig) { r.legacy.SetHandler(testkit.Answer(http.StatusGatewayTimeout, ``)) },
		"asks for fewer requests":            func(r *rig) { r.legacy.SetHandler(testkit.Answer(http.StatusTooManyRequests, ``)) },
	} {
		t.Run("a route whose primary "+name, func(t *testing.T) {
			r := newRig(t, sqlite(t), testSettings)
			r.routes.dualWrite["create-item"] = routeSettings{idempotent: true}
			set(r)
			r.abandon(create("w1"))
			for resends := 1; resends < testSettings.MaxAttempts; resends++ {
				r.w.recover(context.Background())
				if rep := r.repair("w1"); rep.State != domain.StateSent || rep.Attempts != resends {
					t.Fatalf("after %d unanswered resends: %s with %d attempts, want still sent, %d attempts counted", resends, rep.State, rep.Attempts, resends)
				}
				r.advance(time.Duration(testSettings.MaxBackoff) * 2)
			}
			r.w.recover(context.Background())
			if rep := r.repair("w1"); rep.State != domain.StateUnknown || rep.Attempts != testSettings.MaxAttempts {
				t.Errorf("after %d unanswered resends: %s with %d attempts, want unknown, for an operator, the attempts counted", testSettings.MaxAttempts, rep.State, rep.Attempts)
			}
			if lines := r.logs.Lines(t, "dual write outcome unknown; an operator must retry (if the primary applied it) or discard it"); len(lines) != 1 || lines[0]["attempts"] != float64(testSettings.MaxAttempts) {
				t.Errorf("log lines %v, want one naming the attempts", lines)
			}
		})
	}
	t.Run("a route removed from the configuration leaves a write its primary applied without a key unknown at once", func(t *testing.T) {
		r := newRig(t, sqlite(t), testSettings)
		r.routes.dualWrite["create-item"] = routeSettings{}
		r.abandon(create("w1"))
		delete(r.routes.dualWrite, "create-item")
		r.w.recover(context.Background())
		if rep := r.repair("w1"); rep.State != domain.StateUnknown || rep.Attempts != 0 {
			t.Errorf("got %s with %d attempts, want unknown, nothing resent", rep.State, rep.Attempts)
		}
	})
	t.Run("a primary that refuses the resent write skips it", func(t *testing.T) {
		r := newRig(t, sqlite(t), testSettings)
		r.routes.dualWrite["create-item"] = routeSettings{idempotent: true}
		r.legacy.SetHandler(testkit.Answer(http.StatusUnprocessableEntity, `{}`))
		r.abandon(create("w1"))
		r.w.recover(context.Background())
		if rep := r.repair("w1"); rep.State != domain.StateSkipped || rep.Outcome.Status != 422 {
			t.Errorf("got %s %d, want skipped with the primary's 422", rep.State, rep.Outcome.Status)
		}
		if r.modern.Hits() != 0 || r.count("create-item", "skipped") != 1 {
			t.Errorf("the secondary got %d requests and skipped was counted %v times, want 0 and 1", r.modern.Hits(), r.count("create-item", "skipped"))
		}
	})
}

// TestAResendStoppedByAnOperatorStaysUnknown: an operator stops the
// resends of a write (store.StopResend) while one is with the primary;
// the primary's answer, when it comes, settles nothing: the write stays
// unknown for the operator, never queued behind the resource's later
// writes, which went on once it was stopped. Before, the answer queued
// it (1 of 1 queued after the stop; the secondary would end with the
// older body).
func TestAResendStoppedByAnOperatorStaysUnknown(t *testing.T) {
	for name, dsn := range map[string]func(t *testing.T) string{"sqlite": sqlite, "postgres": postgres} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, dsn(t), testSettings)
			r.routes.dualWrite["put-item"] = routeSettings{idempotent: true}
			r.legacy.SetHandler(testkit.Answer(http.StatusServiceUnavailable, `{}`))
			r.abandon(put("w1", "7", `{"v":1}`))
			r.w.recover(context.Background())
			if rep := r.repair("w1"); rep.State != domain.StateSent || !strings.Contains(rep.LastError, "answered 503") {
				t.Fatalf("after an unanswered resend: %s, last error %q; want sent, saying the primary answered 503", rep.State, rep.LastError)
			}
			r.advance(time.Duration(testSettings.MaxBackoff) * 2)

			arrived := make(chan struct{}, 1)
			answer, open := gate(t)
			r.legacy.SetHandler(func(w http.ResponseWriter, _ *http.Request) {
				arrived <- struct{}{}
				<-answer
				w.WriteHeader(http.StatusOK)
			})
			done := make(chan struct{})
			go func() {
				defer close(done)
				r.w.recover(context.Background())
			}()
			receive(t, arrived, "the second resend")
			if err := r.store.StopResend(context.Background(), "w1", domain.AuditEntry{Actor: "ops", Action: "repair_stop", Reason: "primary gone", Detail: "w1"}); err != nil {
				t.Fatal(err)
			}
			open()
			receive(t, done, "the recovery pass")
			if rep := r.repair("w1"); rep.State != domain.StateUnknown {
				t.Errorf("the primary answered 200 to a resend stopped meanwhile: %s, want still unknown", rep.State)
			}
			if n := r.count("put-item", "queued"); n != 0 {
				t.Errorf("queued counted %v times, want 0", n)
			}
			if lines := r.logs.Lines(t, "the primary answered a resent dual write that was settled meanwhile; left as it is"); len(lines) != 1 || lines[0]["status"] != float64(200) {
				t.Errorf("log lines %v, want one with the primary's status", lines)
			}
		})
	}
}
