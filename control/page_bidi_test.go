package control

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"strangler/domain"
	"strangler/store"
)

// TestStatusPageShowsBidirectionalOverridesAsEscapes: reasons are checked
// for control and bidirectional formatting characters since they were
// refused (checkReason), but an override or audit entry an earlier
// release stored, and a detail, may hold them. html/template escapes
// markup, not these: a browser shows the text after U+202E reversed
// ("lacol" reads "local"). The page writes them as \u escapes.
func TestStatusPageShowsBidirectionalOverridesAsEscapes(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	const reason = "approved by \u202elacol\u202c ward\u009b2J"
	o := domain.Override{Route: "list-photos", Mode: "fallback", Actor: "ops-alice", Reason: reason, UpdatedAt: time.Now()}
	if _, err := st.SetOverride(ctx, o, 0, domain.AuditEntry{At: time.Now(), Actor: "ops-alice", Action: "flip", Route: "list-photos",
		FromMode: "legacy", ToMode: "fallback", Reason: reason, Detail: "detail \u2067" + "kcab\u2069"}); err != nil {
		t.Fatal(err)
	}
	h := newPageAdminOn(t, st, &clock{t: time.Now()})
	h.login(t, pageToken)
	body, _ := h.page(t)
	for _, r := range body {
		if unicode.Is(unicode.Bidi_Control, r) || r >= 0x80 && unicode.IsControl(r) {
			t.Fatalf("the status page holds %U as it is", r)
		}
	}
	for _, want := range []string{`approved by \u202elacol\u202c ward\u009b2J`, `detail \u2067kcab\u2069`} {
		if !strings.Contains(body, want) {
			t.Errorf("the status page does not show %s", want)
		}
	}
}
