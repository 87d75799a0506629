package shadow_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"strangler/config"
	"strangler/phi"
	"strangler/shadow"
)

// patientPage builds a JSON document of about 1 KiB like a list endpoint's:
// a few top-level fields and an array of patients. reordered writes every
// object's keys in reverse; changed alters one patient's city.
func patientPage(reordered, changed bool) string {
	type kv struct {
		k string
		v any // a json.RawMessage is written as it is
	}
	obj := func(kvs ...kv) json.RawMessage {
		parts := make([]string, len(kvs))
		for i, p := range kvs {
			v, _ := json.Marshal(p.v)
			parts[i] = fmt.Sprintf("%q:%s", p.k, v)
		}
		if reordered {
			for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
				parts[i], parts[j] = parts[j], parts[i]
			}
		}
		return json.RawMessage("{" + strings.Join(parts, ",") + "}")
	}
	var items []json.RawMessage
	for i := range 6 {
		city := "Oslo"
		if changed && i == 4 {
			city = "Bergen"
		}
		items = append(items, obj(
			kv{"id", 1000 + i},
			kv{"first_name", "Patient"},
			kv{"last_name", fmt.Sprintf("Number%d", i)},
			kv{"born", "1970-01-01"},
			kv{"address", obj(kv{"street", "Karl Johans gate 1"}, kv{"city", city})},
			kv{"active", true},
		))
	}
	return string(obj(
		kv{"page", 1},
		kv{"per_page", 6},
		kv{"total", 600},
		kv{"items", items},
	))
}

func BenchmarkCompare1KiB(b *testing.B) {
	cmp, err := shadow.NewComparer(config.Compare{Ignore: []string{"items[*].etag"}}, phi.RandomHasher())
	if err != nil {
		b.Fatal(err)
	}
	base := patientPage(false, false)
	for _, bc := range []struct {
		name  string
		other string
		want  shadow.Outcome
	}{
		{"equal-bytes", base, shadow.Match},
		{"equal-reordered", patientPage(true, false), shadow.Match},
		// In the same order, one number spelt otherwise: as close to
		// equal bytes as answers of two implementations come.
		{"equal-respelled", strings.Replace(base, `"total":600`, `"total":6E2`, 1), shadow.Match},
		{"mismatch", patientPage(true, true), shadow.Mismatch},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p, o := jsonResponse(200, base), jsonResponse(200, bc.other)
			if res := cmp.Compare(p, o); res.Outcome != bc.want {
				b.Fatalf("got %v %+v, want %v", res.Outcome, res.Diffs, bc.want)
			}
			b.SetBytes(int64(len(base)))
			b.ReportAllocs()
			for b.Loop() {
				cmp.Compare(p, o)
			}
		})
	}
}

func TestBenchmarkDocumentsAreAboutOneKiB(t *testing.T) {
	for _, doc := range []string{patientPage(false, false), patientPage(true, true)} {
		if n := len(doc); n < 900 || n > 1200 || !json.Valid([]byte(doc)) {
			t.Errorf("got a %d-byte document (valid: %v), want valid JSON of about 1 KiB:\n%s", n, json.Valid([]byte(doc)), doc)
		}
	}
}
