package router

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"strangler/shadow"
)

// jsonAnswer answers with a JSON body.
func jsonAnswer(body string) http.HandlerFunc { return answer(200, body) }

// comparisons waits until route has n shadow comparisons counted and
// returns their results by label.
func (f *facade) comparisons(t *testing.T, route string, n int) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := map[string]float64{}
		total := 0.0
		for _, r := range []string{"match", "mismatch", "error", "dropped", "too_large"} {
			v := f.metric(t, "strangler_shadow_comparisons_total", map[string]string{"route": route, "result": r})
			got[r] = v
			total += v
		}
		if total >= float64(n) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %v comparisons after 5s, want %d", got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (f *facade) samples(t *testing.T, route string) []shadow.Sample {
	t.Helper()
	s, err := f.router.deps.Samples.List(context.Background(), route, 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestShadowComparesWithoutChangingTheAnswer(t *testing.T) {
	for _, tc := range []struct {
		name, primary, other, compare, want string
	}{
		{"equal JSON in a different key order", `{"id":7,"name":"Ada","tags":["a","b"]}`, `{"tags":["a","b"],"name":"Ada","id":7}`, ``, "match"},
		{"an ignored field that differs", `{"id":7,"updated_at":"2026-01-01"}`, `{"id":7,"updated_at":"2026-02-02"}`, `compare: {ignore: [updated_at]}`, "match"},
		{"an unordered array permuted", `{"items":[{"id":1},{"id":2},{"id":3}]}`, `{"items":[{"id":3},{"id":1},{"id":2}]}`, `compare: {unordered: [items]}`, "match"},
		{"a real difference", `{"id":7,"address":{"city":"Bern"}}`, `{"id":7,"address":{"city":"Basel"}}`, ``, "mismatch"},
	} {
		t.Run(tc.name+" is a "+tc.want, func(t *testing.T) {
			legacy := newBackend(t, jsonAnswer(tc.primary))
			modern := newBackend(t, jsonAnswer(tc.other))
			f := newFacade(t, legacy.URL, modern.URL, "", fmt.Sprintf(`
  - {name: photos, match: "GET /patients/{id}/photos", mode: shadow, %s}`, tc.compare))
			resp, body := f.get(t, "/patients/7/photos?size=small")
			if resp.StatusCode != 200 || body != tc.primary {
				t.Fatalf("client got %d %s, want the primary's answer unchanged", resp.StatusCode, body)
			}
			if got := f.comparisons(t, "photos", 1); got[tc.want] != 1 {
				t.Fatalf("comparisons %v, want one %s", got, tc.want)
			}
			if modern.last(t).Header.Get("X-Strangler-Shadow") != "1" || modern.last(t).RawQuery != "size=small" {
				t.Errorf("the copy arrived as %+v, want X-Strangler-Shadow: 1 and the same query", modern.last(t))
			}
			if legacy.last(t).Header.Get("X-Strangler-Shadow") != "" {
				t.Errorf("the primary's request carries X-Strangler-Shadow")
			}
			samples := f.samples(t, "photos")
			if tc.want == "match" {
				if len(samples) != 0 {
					t.Errorf("a match left samples %+v", samples)
				}
				return
			}
			if len(samples) != 1 || len(samples[0].Diffs) != 1 || samples[0].Diffs[0].Path != "address.city" {
				t.Fatalf("samples %+v, want one naming address.city", samples)
			}
			s := samples[0]
			hash := f.router.deps.Hasher.Hash
			target := "/patients/{id:" + hash("7") + "}/photos?size={" + hash("small") + "}"
			if s.Target != target || !strings.Contains(s.CurlPrimary, legacy.URL+target) || !strings.Contains(s.CurlOther, modern.URL+target) {
				t.Errorf("curl commands %q / %q do not target the two backends", s.CurlPrimary, s.CurlOther)
			}
		})
	}
}

func TestShadowLeavesWritesAlone(t *testing.T) {
	legacy := newBackend(t, answer(201, `{"id":1}`))
	modern := newBackend(t, answer(201, `{"id":1}`))
	f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: create, match: "/patients", mode: shadow}`)
	req, _ := http.NewRequest(http.MethodPost, f.URL+"/patients", strings.NewReader(`{"name":"x"}`))
	if resp, _ := f.do(t, req); resp.StatusCode != 201 {
		t.Fatalf("got %d", resp.StatusCode)
	}
	time.Sleep(100 * time.Millisecond)
	if modern.hits() != 0 {
		t.Errorf("a POST was copied to the other backend without shadow_writes")
	}
}

func TestShadowKeepsPatientDataOutOfSamples(t *testing.T) {
	for _, compare := range []string{`{}`, `{redact: [name]}`} {
		t.Run("with compare "+compare, func(t *testing.T) {
			legacy := newBackend(t, jsonAnswer(`{"id":7,"name":"Jane Roe","dob":"1970-01-01"}`))
			modern := newBackend(t, jsonAnswer(`{"id":7,"name":"Jane Doe","dob":"1970-01-02"}`))
			f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: patient, match: "GET /patients/{id}", mode: shadow, compare: `+compare+`}`)
			req, _ := http.NewRequest(http.MethodGet, f.URL+"/patients/MRN9988776?ssn=123-45-6789", nil)
			req.Header.Set("Authorization", "Bearer secret-session-token")
			req.Header.Set("Cookie", "session=cookie-secret")
			req.Header.Set("User-Agent", "PatientApp/1.0 (Jane's phone)")
			req.Header.Set("X-Patient-Name", "Jane Roe")
			f.do(t, req)
			f.comparisons(t, "patient", 1)
			samples := f.samples(t, "patient")
			if len(samples) != 1 {
				t.Fatalf("got %d samples, want 1", len(samples))
			}
			dump, _ := json.Marshal(samples)
			families, _ := f.reg.Gather()
			metrics, _ := json.Marshal(families)
			for _, secret := range []string{"Jane", "Roe", "Doe", "1970", "MRN9988776", "123-45-6789", "secret-session-token", "cookie-secret", "X-Forwarded-For", "PatientApp"} {
				for where, text := range map[string]string{"samples": string(dump), "logs": f.logs.String(), "metrics": string(metrics)} {
					if strings.Contains(text, secret) {
						t.Errorf("%q appears in the %s", secret, where)
					}
				}
			}
			if d := samples[0].Diffs[0]; d.Path != "name" || d.Primary == d.Other || !strings.Contains(d.Primary, "{h:") {
				t.Errorf("the difference is %+v, want two different hashes at name", d)
			}
		})
	}
}

func TestShadowLearnsNoise(t *testing.T) {
	var n atomic.Int64
	stamped := func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `{"id":7,"generated_at":"%d"}`, n.Add(1))
	}
	legacy := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		stamped(w, r)
	})
	modern := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		stamped(w, r)
	})
	f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: patient, match: "GET /patients/{id}", mode: shadow, compare: {noise: true}}`)
	// At a noise share of 10%, 300 requests learn the field with
	// near certainty (it takes two samples).
	for range 300 {
		f.get(t, "/patients/7")
	}
	f.comparisons(t, "patient", 300)
	table := f.router.Current()
	if fields := table.byName["patient"].shadow.comparer.Noise().Fields(); !slices.Contains(fields, "generated_at") {
		t.Fatalf("learned noise %v, want generated_at", fields)
	}
	before := f.metric(t, "strangler_shadow_comparisons_total", map[string]string{"route": "patient", "result": "mismatch"})
	for range 20 {
		f.get(t, "/patients/7")
	}
	f.comparisons(t, "patient", 320)
	if after := f.metric(t, "strangler_shadow_comparisons_total", map[string]string{"route": "patient", "result": "mismatch"}); after != before {
		t.Errorf("after learning, %v more mismatches on the noisy field", after-before)
	}
}

// TestSlowShadowNeverSlowsTheClient runs 500 requests while the other
// backend takes 10 s: the client's latency must match a plain proxy's,
// the copies beyond the pool's bound are dropped and counted, and the
// goroutines return afterwards.
func TestSlowShadowNeverSlowsTheClient(t *testing.T) {
	legacy := newBackend(t, jsonAnswer(`{"id":1}`))
	release := make(chan struct{})
	modern := newBackend(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(10 * time.Second):
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	f := newFacade(t, legacy.URL, modern.URL, "", `
  - {name: shadowed, match: "GET /shadowed", mode: shadow, compare: {max_inflight: 16}}
  - {name: plain, match: "GET /plain", mode: legacy}`)
	p99 := func(path string) time.Duration {
		var mu sync.Mutex
		var lat []time.Duration
		var wg sync.WaitGroup
		for range 5 {
			wg.Go(func() {
				for range 100 {
					start := time.Now()
					f.get(t, path)
					mu.Lock()
					lat = append(lat, time.Since(start))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		slices.Sort(lat)
		return lat[len(lat)*99/100]
	}
	plain := p99("/plain")
	// Taken with the connection pools warm, so what comes on top is the
	// shadow copies.
	goroutines := runtime.NumGoroutine()
	shadowed := p99("/shadowed")
	t.Logf("client p99: plain proxy %v, shadow with a 10 s other side %v", plain, shadowed)
	if shadowed > 2*plain+20*time.Millisecond {
		t.Errorf("the shadow route's p99 %v is far above the plain route's %v", shadowed, plain)
	}
	got := f.comparisons(t, "shadowed", 500)
	if got["dropped"] < 400 {
		t.Errorf("comparisons %v: want the copies beyond 16 in flight dropped and counted", got)
	}
	if peak := runtime.NumGoroutine(); peak > goroutines+16*8+50 {
		t.Errorf("%d goroutines with 16 copies in flight (%d before)", peak, goroutines)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > goroutines+20 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines remain, %d before: the copies did not end", runtime.NumGoroutine(), goroutines)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
