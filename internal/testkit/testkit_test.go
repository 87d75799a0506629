package testkit

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func TestMetricsReadTheSameFromARegistryAndAScrape(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"route", "result"})
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "d_seconds", Help: "d"}, []string{"route"})
	reg.MustRegister(c, h)
	c.WithLabelValues("a", "ok").Add(3)
	c.WithLabelValues("a", "failed").Add(1)
	c.WithLabelValues("b", "ok").Add(5)
	h.WithLabelValues("a").Observe(0.1)
	h.WithLabelValues("a").Observe(0.2)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	for name, m := range map[string]Metrics{"gathered": Gather(t, reg), "scraped": Scrape(t, srv.URL)} {
		for _, tc := range []struct {
			got, want float64
			what      string
		}{
			{m.Value("x_total", "route", "a", "result", "ok"), 3, `x_total{route="a",result="ok"}`},
			{m.Value("x_total", "route", "a"), 0, `x_total{route="a"} (no such series)`},
			{m.Sum("x_total", "route", "a"), 4, `the sum of x_total{route="a",…}`},
			{m.Sum("x_total", "result", "ok"), 8, `the sum of x_total{…,result="ok"}`},
			{m.Sum("x_total"), 9, `the sum of x_total`},
			{m.Value("d_seconds", "route", "a"), 2, `the count of d_seconds{route="a"}`},
			{m.Value("absent_total"), 0, `absent_total`},
		} {
			if tc.got != tc.want {
				t.Errorf("%s: %s = %v, want %v", name, tc.what, tc.got, tc.want)
			}
		}
	}
}

func TestBackendRecordsWhatItReceived(t *testing.T) {
	b := NewBackend(t, Answer(http.StatusCreated, `{"id":1}`))
	resp, err := http.Post(b.URL+"/p?q=1", "application/json", strings.NewReader(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	select {
	case <-b.Arrived():
	case <-time.After(5 * time.Second):
		t.Fatal("Arrived was not signalled")
	}
	r := b.Last(t)
	if resp.StatusCode != http.StatusCreated || b.Hits() != 1 || r.Method != "POST" || r.Path != "/p" || r.RawQuery != "q=1" || string(r.Body) != `{"a":1}` {
		t.Errorf("answered %d; recorded %d requests, the last %+v", resp.StatusCode, b.Hits(), r)
	}
}

func TestClockMovesOnlyWhenTold(t *testing.T) {
	c := NewClock(T0)
	if c.Now() != T0 || c.Advance(time.Minute) != T0.Add(time.Minute) || c.Now() != T0.Add(time.Minute) {
		t.Errorf("the clock reads %v, want T0 + 1m", c.Now())
	}
	c.Set(T0)
	if c.Now() != T0 {
		t.Errorf("after Set(T0) the clock reads %v", c.Now())
	}
}

func TestEventuallyWaitsForTheCondition(t *testing.T) {
	start := time.Now()
	Eventually(t, 5*time.Second, "50ms to pass", func() bool { return time.Since(start) > 50*time.Millisecond })
	if time.Since(start) < 50*time.Millisecond {
		t.Error("Eventually returned before the condition held")
	}
}
