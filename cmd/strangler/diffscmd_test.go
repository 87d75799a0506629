package main

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"strangler/shadow"
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

	t.Run("mismatches group by route and differing fields, with hashes for values and two curl commands", func(t *testing.T) {
		for _, id := range []string{"MRN1", "MRN1", "MRN2"} {
			getBody(t, "http://"+f.public+"/patients/"+id)
		}
		var out string
		deadline := time.Now().Add(30 * time.Second) // generous for a loaded machine
		for {
			out = strangler(t, "diffs", "--route", "get-patient").must(t)
			if strings.HasPrefix(out, "get-patient: 3 samples") || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		const h = `\{h:[0-9a-f]{16}\}`
		for _, want := range []string{
			`get-patient: 3 samples differing in name, n \(newest \d+s ago, oldest \d+s ago\)\n`,
			`\n  GET /patients/\{id:h:[0-9a-f]{16}\} ×2\n`,
			`\n  GET /patients/\{id:h:[0-9a-f]{16}\} ×1\n`,
			`  newest: .*, primary 200, other 200\n`,
			`  PATH +PRIMARY +OTHER\n`,
			`  name +"` + h + `" +"` + h + `"\n`,
			`  primary: curl -sS -i -g '` + regexp.QuoteMeta(legacy.URL) + `/patients/\{id:h:[0-9a-f]{16}\}' `,
			`  other: +curl -sS -i -g '` + regexp.QuoteMeta(modern.URL) + `/patients/\{id:h:[0-9a-f]{16}\}' `,
			`# replace each \{…h:…\} placeholder with the value it stands for\n`,
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("diffs lacks %s:\n%s", want, out)
			}
		}
		for _, secret := range []string{"MRN1", "MRN2", "Ann"} {
			if strings.Contains(out, secret) {
				t.Errorf("diffs shows %q:\n%s", secret, out)
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
		deadline := time.Now().Add(30 * time.Second) // generous for a loaded machine
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

func TestDiffsSaysWhichSamplesCannotBeRead(t *testing.T) {
	now := time.Now()
	var out strings.Builder
	for _, g := range groupSamples([]shadow.Sample{
		{Route: "get-patient", At: now, Unreadable: "key 1a2b: encrypted with a key that is not in store_encryption.keys"},
		{Route: "get-patient", At: now.Add(-time.Minute), Unreadable: "key 1a2b: encrypted with a key that is not in store_encryption.keys"},
	}) {
		writeGroup(&out, g, now)
	}
	want := "get-patient: 2 samples that cannot be read (newest 0s ago): key 1a2b: encrypted with a key that is not in store_encryption.keys\n"
	if out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}
