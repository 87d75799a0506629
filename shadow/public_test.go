package shadow_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"strangler/config"
	"strangler/shadow"
)

// TestKeysThatAreDataLeaveOnlyAsAnyKey: an answer keyed by the record
// number the request named (which reads like a field name), by a surname
// the query searched for, or by a number no field name has, puts none of
// them into a sample's diff paths or a learned noise field: each is {*},
// and a noise field so written ignores every member of the map; in a
// diff's value (a map one side lacks whole) each is a placeholder.
func TestKeysThatAreDataLeaveOnlyAsAnyKey(t *testing.T) {
	const mrn, surname, number = "MRN-7Q4Z-TEST", "Zyxwvut", "MRN7730019"
	asked := shadow.Asked{Pattern: "/patients/{id}", Target: "/patients/" + mrn + "?surname=" + surname}
	answer := func(n int) shadow.Response {
		return jsonResponse(200, fmt.Sprintf(`{"visits":{%q:{"at":%d}},"family":{%q:{"seen":%d}},"charts":{%q:{"v":%d}},"status":"ok"}`, mrn, n, surname, n, number, n))
	}
	cmp := newComparer(t, config.Compare{Noise: true})
	res := cmp.Compare(answer(1), answer(2))
	s := shadow.NewSample("get-patient", time.Now(), shadow.RequestCopy{Method: "GET", Target: asked.Target, Pattern: asked.Pattern}, "http://legacy", "http://modern", res, cmp.Redactor())
	b, _ := json.Marshal(s)
	for _, data := range []string{mrn, surname, number} {
		if strings.Contains(string(b), data) {
			t.Errorf("the sample holds %s: %s", data, b)
		}
	}
	var got []string
	for _, d := range s.Diffs {
		got = append(got, d.Path)
	}
	if want := []string{"visits{*}.at", "family{*}.seen", "charts{*}.v"}; !slices.Equal(got, want) {
		t.Errorf("sample diff paths %q, want %q", got, want)
	}

	// A map one side lacks whole: its keys are in the diff's value.
	res = cmp.Compare(jsonResponse(200, fmt.Sprintf(`{"visits":{%q:{"at":1},%q:{"at":2},"total":{"n":2}}}`, mrn, number)), jsonResponse(200, `{}`))
	s = shadow.NewSample("get-patient", time.Now(), shadow.RequestCopy{Method: "GET", Target: asked.Target, Pattern: asked.Pattern}, "http://legacy", "http://modern", res, cmp.Redactor())
	if len(s.Diffs) != 1 || s.Diffs[0].Path != "visits" || strings.Contains(s.Diffs[0].Primary, mrn) || strings.Contains(s.Diffs[0].Primary, number) || !strings.Contains(s.Diffs[0].Primary, `"total":{"n":`) {
		t.Errorf("a map legacy alone sent: %+v, want its keys that are data as placeholders, its field names kept", s.Diffs)
	}

	noise := cmp.Noise()
	noise.Learn(asked, answer(1), answer(2))
	learned := noise.Learn(asked, answer(3), answer(4))
	if want := []string{"visits{*}.at", "family{*}.seen", "charts{*}.v"}; !slices.Equal(learned, want) {
		t.Errorf("learned noise %q, want %q", learned, want)
	}
	other := func(n int) shadow.Response {
		return jsonResponse(200, fmt.Sprintf(`{"visits":{"MRN-0000":{"at":%d}},"family":{"smith":{"seen":%d}},"charts":{"MRN1234567":{"v":%d}},"status":"ok"}`, n, n, n))
	}
	if res := cmp.Compare(other(5), other(6)); res.Outcome != shadow.Match {
		t.Errorf("another patient's answers: %v %+v, want the learned map fields ignored", res.Outcome, res.Diffs)
	}
	if err := noise.Preload([]string{"visits.MRN7730019.at"}); err != nil || slices.ContainsFunc(noise.Fields(), func(f string) bool { return strings.Contains(f, number) }) {
		t.Errorf("preloading an earlier release's field: %v, fields %q", err, noise.Fields())
	}
}

// TestAKeyIsTheRequestsValueWhateverItsCase: a map one side sent whole,
// keyed by the record number the request named in another case, shows
// that key as a placeholder in the sample's value, as the diff path
// writes it {*}: one rule, whatever the case.
func TestAKeyIsTheRequestsValueWhateverItsCase(t *testing.T) {
	const asked, sent = "mrn-7q4z-test", "MRN-7Q4Z-TEST"
	cmp := newComparer(t, config.Compare{})
	req := shadow.RequestCopy{Method: "GET", Target: "/patients/" + asked, Pattern: "/patients/{id}"}
	res := cmp.Compare(jsonResponse(200, fmt.Sprintf(`{"visits":{%q:{"at":1},"total":{"n":1}}}`, sent)), jsonResponse(200, `{}`))
	s := shadow.NewSample("get-patient", time.Now(), req, "http://legacy", "http://modern", res, cmp.Redactor())
	b, _ := json.Marshal(s)
	if strings.Contains(strings.ToUpper(string(b)), sent) {
		t.Errorf("the sample holds the record number: %s", b)
	}
	if len(s.Diffs) != 1 || !strings.Contains(s.Diffs[0].Primary, `"total":{"n":`) || !strings.Contains(s.Diffs[0].Primary, `"{h:`) {
		t.Errorf("diffs %+v, want the record number a placeholder and the field names kept", s.Diffs)
	}
}
