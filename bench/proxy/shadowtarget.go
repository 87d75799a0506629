package main

import (
	"fmt"
	"time"
)

// Issue 4: shadow mode. The route serves legacy and compares every
// answer with modern's, which has the same 1 KiB JSON with its keys in
// another order, so each comparison parses both documents and matches
// them structurally.

// shadowInflight bounds the shadow calls in flight: far above what -conns
// connections can have outstanding, so that nothing is dropped for want of
// a slot and every request is compared.
const shadowInflight = 1024

func shadowSpec() stranglerSpec {
	return stranglerSpec{
		key: "shadow", name: "strangler shadow", request: buildRequest("/bench"),
		routes: fmt.Sprintf(`  - name: bench
    match: "GET /bench"
    mode: shadow
    primary: legacy
    compare: { sample: 1, max_inflight: %d }
`, shadowInflight),
	}
}

// settleShadow waits until every request the target served has been
// compared (the comparison finishes after the client has its answer).
func settleShadow(t *target) (time.Duration, error) {
	var seen float64
	d, err := waitFor(10*time.Second, func() (bool, error) {
		m, err := metricBy(t.admin, "strangler_shadow_comparisons_total", "result")
		seen = total(m)
		return seen >= float64(t.served), err
	})
	if err != nil {
		err = fmt.Errorf("%.0f shadow comparisons for %d requests: %w", seen, t.served, err)
	}
	return d, err
}

// settlerOf is the settle function of a target, nil if it needs none.
func settlerOf(key string) func(*target) (time.Duration, error) {
	switch key {
	case "shadow":
		return settleShadow
	case "dualwrite", "dualwrite-enc", "dualwrite-pg":
		return settleDualWrite
	}
	return nil
}
