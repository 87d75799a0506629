package control

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"strangler/domain"
)

// TestTheStatusPageSaysWhatIsOwedAndToWhom: no write owed says so in
// words; a write owed by a route the file no longer has is listed under
// its name, marked as not in the file, with the backend it is owed to.
func TestTheStatusPageSaysWhatIsOwedAndToWhom(t *testing.T) {
	h := newPageAdmin(t)
	h.login(t, pageToken)
	if body, _ := h.page(t); !strings.Contains(body, `id="owed-none"`) {
		t.Errorf("with nothing owed the page does not say so")
	}
	ctx := context.Background()
	w := domain.Intent{ID: "w1", Route: "put-item", Resource: "items/1", Method: http.MethodPut, Target: "/items/1",
		Header: http.Header{}, Body: []byte(`{}`), Primary: domain.Legacy}
	if err := h.store.BeginWrite(ctx, w, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := h.store.RecordOutcome(ctx, "w1", domain.Outcome{Status: 200}); err != nil {
		t.Fatal(err)
	}
	body, _ := h.page(t)
	m := regexp.MustCompile(`(?s)<tr id="owed-put-item-modern">(.*?)</tr>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no owed row for put-item:\n%s", body)
	}
	text := strings.Join(strings.Fields(regexp.MustCompile(`<[^>]+>`).ReplaceAllString(m[1], " ")), " ")
	if want := "put-item not in the file modern 1 0 0"; text != want {
		t.Errorf("the owed row says %q, want %q", text, want)
	}
}
