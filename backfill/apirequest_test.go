package backfill

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"strangler/config"
	"strangler/phi"
	"strangler/store"
)

// TestARowWhoseBodyJSONCannotWriteFailsUnsent: json.Marshal refuses a
// number field that is not a JSON number; its error was ignored, and the
// request went with no body at all, which the API took as a row migrated.
func TestARowWhoseBodyJSONCannotWriteFailsUnsent(t *testing.T) {
	var sent atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { sent.Add(1) }))
	defer srv.Close()
	r := &apiRunner{client: newAPIClient(&config.BackfillAPI{URL: srv.URL}), hasher: phi.RandomHasher()}
	tbl := &apiTable{table: &table{name: "doses", cols: []column{{name: "amount"}}},
		api:    &config.TargetAPI{Method: http.MethodPut, Retry: config.Retry{MaxAttempts: 1}},
		fields: []apiField{{name: "amount", col: 0, number: true}}, parts: []string{"/doses/1"}}
	res := r.sendRow(context.Background(), tbl, sourceRow{key: []byte("1"), vals: [][]byte{[]byte("NaN")}}, store.APIBackfillSent{}, false, newPacer(0),
		&outage{limit: 1, stop: func(error) {}})
	if res.ok || res.fail.Reason != reasonInvalidValue || strings.Contains(res.fail.Message, "NaN") || strings.Contains(res.fail.Payload, "NaN") {
		t.Errorf("result %+v, want an invalid_value failure that quotes no value", res)
	}
	if n := sent.Load(); n != 0 {
		t.Errorf("the API got %d requests, want none", n)
	}
}
