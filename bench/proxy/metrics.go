package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// metricClient reads strangler's /metrics; a short timeout, so that a
// wedged target fails a check instead of hanging the bench.
var metricClient = &http.Client{Timeout: 5 * time.Second}

// metricBy fetches strangler's /metrics and sums the samples of one metric
// by the value of one of their labels (samples without it sum under "").
func metricBy(admin, name, label string) (map[string]float64, error) {
	text, err := scrape(admin)
	if err != nil {
		return nil, err
	}
	return sumBy(text, name, label), nil
}

// scrape fetches strangler's /metrics.
func scrape(admin string) (string, error) {
	resp, err := metricClient.Get("http://" + admin + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("/metrics answered %s", resp.Status)
	}
	return string(body), nil
}

// sumBy sums the samples of metric name in text, a /metrics scrape, by the
// value of one of their labels (samples without it sum under "").
func sumBy(text, name, label string) map[string]float64 {
	out := map[string]float64{}
	for line := range strings.Lines(text) {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || rest[0] != '{' && rest[0] != ' ' {
			continue
		}
		labels, value := "", rest
		if rest[0] == '{' {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				continue
			}
			labels, value = rest[1:end], rest[end+1:]
		}
		var v float64
		if _, err := fmt.Sscan(strings.TrimSpace(value), &v); err != nil {
			continue
		}
		out[labelValue(labels, label)] += v
	}
	return out
}

// goMemory is how the Go runtime of a strangler target accounts for its
// memory, in bytes, from the Go collector on its /metrics.
type goMemory struct {
	heapInUse  float64 // spans holding objects, live or garbage not yet swept
	heapFree   float64 // free spans the runtime keeps rather than return to the OS
	stacks     float64 // goroutine stacks
	goroutines float64
}

func readGoMemory(admin string) (goMemory, error) {
	text, err := scrape(admin)
	if err != nil {
		return goMemory{}, err
	}
	v := func(name string) float64 { return sumBy(text, name, "")[""] }
	return goMemory{
		heapInUse:  v("go_memstats_heap_inuse_bytes"),
		heapFree:   v("go_memstats_heap_idle_bytes") - v("go_memstats_heap_released_bytes"),
		stacks:     v("go_memstats_stack_inuse_bytes"),
		goroutines: v("go_goroutines"),
	}, nil
}

// labelValue returns the value of label in a Prometheus label list
// (a="x",b="y"), or "". Values here are route names and closed sets:
// no escaped quotes.
func labelValue(labels, label string) string {
	for labels != "" {
		var pair string
		pair, labels, _ = strings.Cut(labels, `",`)
		k, v, _ := strings.Cut(pair, `="`)
		if k == label {
			return strings.TrimSuffix(v, `"`)
		}
	}
	return ""
}

func total(m map[string]float64) float64 {
	var sum float64
	for _, v := range m {
		sum += v
	}
	return sum
}

// counterOf names the counter a target's check reads, by its result label.
func counterOf(key string) string {
	switch key {
	case "shadow":
		return "strangler_shadow_comparisons_total"
	case "dualwrite", "dualwrite-enc", "dualwrite-pg":
		return "strangler_dualwrite_total"
	}
	return ""
}

// snapshotCounters reads, before the measured rounds, the counters that
// the shadow and dual-write checks compare afterwards.
func snapshotCounters(targets []*target) map[string]map[string]float64 {
	out := map[string]map[string]float64{}
	for _, t := range targets {
		if name := counterOf(t.key); name != "" {
			if m, err := metricBy(t.admin, name, "result"); err == nil {
				out[t.key] = m
			}
		}
	}
	return out
}

// waitFor polls cond every 25 ms until it holds or timeout passes, and
// returns how long that took.
func waitFor(timeout time.Duration, cond func() (bool, error)) (time.Duration, error) {
	start := time.Now()
	for {
		ok, err := cond()
		if ok || err != nil {
			return time.Since(start), err
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("not done after %v", timeout)
		}
		time.Sleep(25 * time.Millisecond)
	}
}
