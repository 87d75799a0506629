package control

import (
	"context"
	"strings"
	"testing"
	"time"

	"strangler/domain"
)

func TestStatusPageSaysWhatBlocksTheNextStageAndWhenRetirementComes(t *testing.T) {
	h := newPageAdmin(t)
	// Fallbacks falling by ten a day over the week, four this hour.
	now := h.clock.Now()
	var counts []domain.HourCount
	for d, n := range []int64{60, 50, 40, 30, 20, 10} {
		at := now.Add(-time.Duration(6-d) * 24 * time.Hour).Truncate(time.Hour)
		counts = append(counts, domain.HourCount{Route: "get-patient", Hour: at, Requests: 2000, Modern: 2000 - n, Fallbacks: n, LastFallbackAt: at})
	}
	counts = append(counts, domain.HourCount{Route: "get-patient", Hour: now.Truncate(time.Hour), Requests: 100, Modern: 96, Fallbacks: 4, ConfirmedMissing: 7, LastFallbackAt: now})
	if err := h.store.AddCounts(context.Background(), counts); err != nil {
		t.Fatal(err)
	}
	h.login(t, pageToken)
	body, _ := h.page(t)
	for _, want := range []string{
		`<span class="outlook muted small">at the current trend, retirable around`,
		`<span class="next small">next: modern; blocked by max_fallback_rate 1%: the fallback rate is 4%</span>`,
		`<span class="next small">next: shadow</span>`, // list-photos, in legacy, without gates
		`(and 7 confirmed missing, which do not count)`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
