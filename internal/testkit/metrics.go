package testkit

import (
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one reading of a set of Prometheus metrics, from a registry
// in the test's process or scraped from a /metrics endpoint.
type Metrics map[string]*dto.MetricFamily

// Gather reads the metrics of g.
func Gather(t testing.TB, g prometheus.Gatherer) Metrics {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	m := Metrics{}
	for _, f := range families {
		m[f.GetName()] = f
	}
	return m
}

// Scrape reads the metrics a /metrics endpoint serves in Prometheus's
// text format.
func Scrape(t testing.TB, url string) Metrics {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("scraping %s: %d %s", url, resp.StatusCode, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("scraping %s: %v", url, err)
	}
	return Metrics(families)
}

// Value is the value of the series of name whose labels are exactly
// labels (name, value pairs), or 0 when there is none: a counter's or a
// gauge's value, a histogram's or a summary's sample count.
func (m Metrics) Value(name string, labels ...string) float64 {
	want := pairs(labels)
	var v float64
	m.each(name, func(s *dto.Metric) {
		if len(s.GetLabel()) == len(want) && has(s, want) {
			v = value(s)
		}
	})
	return v
}

// Sum adds up the series of name whose labels include labels (name,
// value pairs), whatever their other labels.
func (m Metrics) Sum(name string, labels ...string) float64 {
	want := pairs(labels)
	var sum float64
	m.each(name, func(s *dto.Metric) {
		if has(s, want) {
			sum += value(s)
		}
	})
	return sum
}

// Observed is the sum of what the histograms of name whose labels
// include labels (name, value pairs) observed: seconds, for a duration.
func (m Metrics) Observed(name string, labels ...string) float64 {
	want := pairs(labels)
	var sum float64
	m.each(name, func(s *dto.Metric) {
		if has(s, want) {
			sum += s.GetHistogram().GetSampleSum()
		}
	})
	return sum
}

func (m Metrics) each(name string, f func(*dto.Metric)) {
	if fam := m[name]; fam != nil {
		for _, s := range fam.GetMetric() {
			f(s)
		}
	}
}

func pairs(labels []string) map[string]string {
	if len(labels)%2 != 0 {
		panic(fmt.Sprintf("testkit: labels %q are not name, value pairs", labels))
	}
	out := map[string]string{}
	for i := 0; i < len(labels); i += 2 {
		out[labels[i]] = labels[i+1]
	}
	return out
}

func has(s *dto.Metric, want map[string]string) bool {
	n := 0
	for _, l := range s.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

func value(s *dto.Metric) float64 {
	switch {
	case s.Counter != nil:
		return s.Counter.GetValue()
	case s.Gauge != nil:
		return s.Gauge.GetValue()
	case s.Histogram != nil:
		return float64(s.Histogram.GetSampleCount())
	case s.Summary != nil:
		return float64(s.Summary.GetSampleCount())
	case s.Untyped != nil:
		return s.Untyped.GetValue()
	}
	return 0
}
