package shadow_test

import (
	"testing"

	"strangler/config"
	"strangler/shadow"
)

// TestAByteOrderMarkIsNoDifference: a legacy PHP file saved with a UTF-8
// byte order mark writes one before every answer; the clients that work
// with legacy read the JSON after it (browsers' fetch, .NET, Java; RFC
// 8259 section 8.1 lets a parser ignore it). The JSON is compared
// structurally all the same, and a field that differs is named.
//
// Found by the red team: the body was compared by bytes, every answer a
// mismatch of the whole body that compare.ignore could not quiet, and the
// route's gate held its migration back.
func TestAByteOrderMarkIsNoDifference(t *testing.T) {
	cmp := newComparer(t, config.Compare{})
	p := jsonResponse(200, "\uFEFF{\"a\":1,\"b\":2}")
	if res := cmp.Compare(p, jsonResponse(200, `{"b":2,"a":1}`)); res.Outcome != shadow.Match {
		t.Errorf("got %v %+v, want a match", res.Outcome, res.Diffs)
	}
	res := cmp.Compare(p, jsonResponse(200, `{"b":3,"a":1}`))
	if res.Outcome != shadow.Mismatch || len(res.Diffs) != 1 || res.Diffs[0].Path != "b" {
		t.Errorf("got %v %+v, want a mismatch at b", res.Outcome, res.Diffs)
	}
}
