package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestDiffs(t *testing.T) {
	// Legacy, the primary, numbers its answers, so two of them to one
	// request differ in "n": noise.
	var n atomic.Int64
	legacy := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"id":1,"name":"Ann","n":%d}`, n.Add(1))
	})
	modern := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":1,"name":"Anne","n":0}`)
	})
	f := startAdminFacade(t, legacy.URL, modern.URL, `  - {name: get-patient, match: "GET /patients/{id}", mode: shadow}
  - {name: get-visit, match: "GET /visits/{id}", mode: shadow, compare: {noise: true}}
`)
	strangler := cli(f.admin)

	t.Run("no samples yet says so", func(t *testing.T) {
		if out := strangler(t, "diffs").must(t); out != "no mismatch samples\n" {
			t.Errorf("diffs = %q", out)
		}
	})

	t.Run("no noise learned yet says so", func(t *testing.T) {
		out := strangler(t, "diffs", "--noise").must(t)
		if !strings.HasPrefix(out, "no noise fields learned") {
			t.Errorf("diffs --noise = %q", out)
		}
	})

	t.Run("a mismatch shows each differing path with both values and two curl commands", func(t *testing.T) {
		getBody(t, "http://"+f.public+"/patients/1")
		var out string
		deadline := time.Now().Add(5 * time.Second)
		for {
			out = strangler(t, "diffs", "--route", "get-patient").must(t)
			if out != "no mismatch samples\n" || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		for _, want := range []string{
			"get-patient  ",
			"primary 200, other 200\n",
			"  PATH  PRIMARY  OTHER\n",
			"  name  \"Ann\"    \"Anne\"\n",
			"  primary: curl -sS -i " + legacy.URL + "/patients/1 ",
			"  other:   curl -sS -i " + modern.URL + "/patients/1 ",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("diffs lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("--noise lists the fields a route learned", func(t *testing.T) {
		// A tenth of shadowed requests go to the primary twice; a field
		// must differ twice to be learned.
		for i := 0; ; i++ {
			getBody(t, "http://"+f.public+"/visits/1")
			if strings.Contains(f.logs.String(), `"msg":"shadow noise learned"`) {
				break
			}
			if i == 2000 {
				t.Fatal("no noise learned after 2000 requests")
			}
		}
		// The log line comes just before the field is stored.
		var out string
		deadline := time.Now().Add(5 * time.Second)
		for {
			out = strangler(t, "diffs", "--noise").must(t)
			if !strings.HasPrefix(out, "no noise") || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if want := "ROUTE      NOISE FIELDS\nget-visit  n\n"; out != want {
			t.Errorf("diffs --noise = %q, want %q", out, want)
		}
	})

	t.Run("a bad limit is refused before calling", func(t *testing.T) {
		if r := strangler(t, "diffs", "--limit", "0"); r.err == nil {
			t.Error("diffs --limit 0 succeeded")
		}
	})
}
