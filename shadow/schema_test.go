package shadow

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"strangler/config"
)

func jsonAnswer(status int, body string) Response {
	return Response{Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)}
}

// patientAnswer is legacy's answer for patient i: the record, with a
// nickname on every third one and a map of visits keyed by record number.
func patientAnswer(i int) Response {
	nick := ""
	if i%3 == 0 {
		nick = fmt.Sprintf(`"nickname":"Zed%d",`, i)
	}
	return jsonAnswer(200, fmt.Sprintf(`{"id":%d,"name":"Zelda Quimbyfrost %d",%s"dob":"1961-07-14","status":%q,"visits":%d,
		"weight":%d.5,"tags":["a%d","b"],"address":{"city":"Springfield %d"},
		"visits_by_mrn":{"MRN77300%02d":{"count":%d}},"contacts":{"Quimbyfrost":{"phone":"555-01%02d"}}}`,
		i, i, nick, []string{"active", "inactive"}[i%2], i, 60+i, i, i, i, i, i))
}

func schemaRules(t *testing.T, c config.Compare) *SchemaRules {
	t.Helper()
	r, err := NewSchemaRules(c)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestALearnedSchemaHoldsShapesAndNoValues(t *testing.T) {
	rules := schemaRules(t, config.Compare{KeepValues: []string{"status"}, Maps: []string{"contacts"}})
	l := NewSchemas().Route("get-patient")
	key := SchemaKey{"GET", 200}
	for i := range 12 {
		if !l.Learn(key, Asked{}, patientAnswer(i), rules) {
			t.Fatalf("answer %d was not learned", i)
		}
	}
	s := l.known[key]
	doc, err := MarshalSchema(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, value := range []string{"Zelda", "Quimbyfrost", "1961", "MRN", "Springfield", "555-01", "Zed"} {
		if strings.Contains(string(doc), value) {
			t.Errorf("the schema holds %q from the answers:\n%s", value, doc)
		}
	}
	if s.Answers != 12 {
		t.Errorf("answers = %d, want 12", s.Answers)
	}
	root := s.Root
	for _, tc := range []struct {
		path     string
		types    string
		presence int64
	}{
		{"id", "integer", 12}, {"name", "string", 12}, {"nickname", "string", 4}, {"weight", "number", 12},
		{"tags", "array", 12}, {"address", "object", 12},
	} {
		p := root.Properties[tc.path]
		if p == nil {
			t.Errorf("%s was not learned", tc.path)
			continue
		}
		b, _ := json.Marshal(p.Types)
		if got := string(b); got != fmt.Sprintf(`{%q:%d}`, tc.types, tc.presence) {
			t.Errorf("%s: types %s, want %d of %s", tc.path, got, tc.presence, tc.types)
		}
	}
	if got := root.Properties["tags"].Items.Types[typeString]; got != 24 {
		t.Errorf("tags[*]: %d strings, want 24", got)
	}
	if m := root.Properties["visits_by_mrn"]; m == nil || m.Map == nil || m.Properties != nil || m.Map.Properties["count"] == nil {
		t.Errorf("visits_by_mrn, keyed by record numbers, is not learned as a map of {count}: %+v", m)
	}
	if c := root.Properties["contacts"]; c == nil || c.Map == nil {
		t.Errorf("contacts, listed in compare.maps, is not learned as a map: %+v", c)
	}
	if got := root.Properties["status"].Values; len(got) != 2 || got[`"active"`] != 6 || got[`"inactive"`] != 6 {
		t.Errorf("status values %v, want active and inactive six times each: it is a keep_values path", got)
	}
}

func TestModernIsCheckedAgainstWhatLegacyAlwaysSends(t *testing.T) {
	rules := schemaRules(t, config.Compare{Ignore: []string{"weight"}, Maps: []string{"contacts"}})
	l := NewSchemas().Route("get-patient")
	key := SchemaKey{"GET", 200}
	modern := jsonAnswer(200, `{"id":1,"dob":"1961-07-14","status":"active","visits":"3","weight":"heavy","tags":["a",7],
		"address":{"city":"x"},"visits_by_mrn":{"MRN1":{"count":1.0},"MRN2":{"count":2.5}},"contacts":{}}`)

	if got := l.Check(key, modern, rules); got != nil {
		t.Errorf("checked against nothing learned: %v", got)
	}
	for i := range MinEvidence - 1 {
		l.Learn(key, Asked{}, patientAnswer(i), rules)
	}
	if got := l.Check(key, modern, rules); got != nil {
		t.Errorf("checked against %d answers, fewer than MinEvidence: %v", MinEvidence-1, got)
	}
	l.Learn(key, Asked{}, patientAnswer(MinEvidence), rules)

	got := l.Check(key, modern, rules)
	want := []Found{
		{"visits", DriftType},
		{"tags[*]", DriftType},
		{"visits_by_mrn{*}.count", DriftType},
		{"name", DriftMissing},
	}
	if !slices.Equal(got, want) {
		t.Errorf("found %v, want %v: nickname is not always sent, weight is ignored, a count of 1.0 or 2.5 is no integer", got, want)
	}
	d := l.known[key].Drift
	if d["name"].Missing != 1 || d["visits"].Type != 1 || d["visits"].ModernTypes[typeString] != 1 {
		t.Errorf("drift %+v %+v, want name missing once, visits a string once", d["name"], d["visits"])
	}
	if l.delta[key].Checked != 1 || l.known[key].Checked != 1 {
		t.Errorf("checked %d and %d, want 1", l.known[key].Checked, l.delta[key].Checked)
	}

	t.Run("a whole number where legacy sends fractions is no drift", func(t *testing.T) {
		for range MinEvidence {
			l.Learn(SchemaKey{"GET", 201}, Asked{}, jsonAnswer(201, `{"weight":70.5}`), rules)
		}
		if got := l.Check(SchemaKey{"GET", 201}, jsonAnswer(201, `{"weight":70}`), schemaRules(t, config.Compare{})); got != nil {
			t.Errorf("found %v", got)
		}
		for _, f := range l.Check(key, jsonAnswer(200, `{"id":7.0,"name":"x","visits":1e1}`), rules) {
			if f.Kind == DriftType {
				t.Errorf("found %v in 7.0 or 1e1 where legacy sent integers: they are whole", f)
			}
		}
		if got := l.Check(SchemaKey{"GET", 201}, jsonAnswer(201, `{"weight":null}`), schemaRules(t, config.Compare{})); len(got) != 1 || got[0] != (Found{"weight", DriftType}) {
			t.Errorf("found %v, want weight's null as a type legacy never sent", got)
		}
	})
	t.Run("a body that is not JSON is neither learned nor checked", func(t *testing.T) {
		html := Response{Status: 200, Header: http.Header{"Content-Type": {"text/html"}}, Body: []byte("<p>hi</p>")}
		if l.Learn(key, Asked{}, html, rules) || l.Check(key, html, rules) != nil {
			t.Error("an HTML answer was used")
		}
		cut := patientAnswer(1)
		cut.Truncated = true
		if l.Learn(key, Asked{}, cut, rules) {
			t.Error("an answer cut at the capture cap was learned")
		}
	})
}

func TestASchemaStaysBoundedWhateverTheAnswers(t *testing.T) {
	rules := schemaRules(t, config.Compare{KeepValues: []string{"code"}})
	l := NewSchemas().Route("search")
	key := SchemaKey{"GET", 200}
	for i := range 300 {
		// Every answer a new set of plain-word keys, with a few new ones
		// nested below, and a keep_values path with ever new values.
		var fields []string
		for j := range 5 {
			fields = append(fields, fmt.Sprintf(`"field_%c%c":{"sub_%c":1}`, 'a'+i%26, 'a'+(i/26)%26, 'a'+j))
		}
		body := fmt.Sprintf(`{"code":"c%d","wide":{%s},"deep":%s1%s}`, i, strings.Join(fields, ","), strings.Repeat(`{"x":`, 100), strings.Repeat("}", 100))
		l.Learn(key, Asked{}, jsonAnswer(200, body), rules)
	}
	s := l.known[key]
	if n := s.Root.size(); n > maxShapes {
		t.Errorf("the schema has %d places, more than %d", n, maxShapes)
	}
	if w := s.Root.Properties["wide"]; w == nil || w.Map == nil {
		t.Errorf("an object with ever new keys is not a map: %+v", w)
	}
	if c := s.Root.Properties["code"]; !c.Many || c.Values != nil {
		t.Errorf("code kept %d values, want none once more than %d came", len(c.Values), maxEnumValues)
	}
	l.Learn(SchemaKey{"GET", 299}, Asked{}, jsonAnswer(299, `{"code":"a\u0000b"}`), rules)
	if c := l.known[SchemaKey{"GET", 299}].Root.Properties["code"]; !c.Many || c.Values != nil {
		t.Errorf("code kept %v, want no value with a control character (PostgreSQL's jsonb refuses \\u0000)", c.Values)
	}
	if !s.Truncated {
		t.Error("the schema does not say it left the 100-deep nesting unlearned")
	}
	for i := range maxSchemaKeys + 4 {
		l.Learn(SchemaKey{"GET", 200 + i}, Asked{}, jsonAnswer(200+i, `{}`), rules)
	}
	if len(l.known) != maxSchemaKeys {
		t.Errorf("the route learned %d statuses, want at most %d", len(l.known), maxSchemaKeys)
	}
}

// memorySchemas is a SchemaStore in memory.
type memorySchemas struct {
	mu   sync.Mutex
	docs map[string][]byte
	fail bool
	// written is every document ever stored, in order.
	written []string
}

func (m *memorySchemas) MergeSchema(_ context.Context, route, method string, status int, merge func([]byte) ([]byte, error)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return fmt.Errorf("store down")
	}
	k := fmt.Sprintf("%s %s %d", route, method, status)
	b, err := merge(m.docs[k])
	if err == nil {
		m.docs[k] = b
		m.written = append(m.written, string(b))
	}
	return err
}

func (m *memorySchemas) LoadSchemas(_ context.Context, route string) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out [][]byte
	for k, d := range m.docs {
		if route == "" || strings.HasPrefix(k, route+" ") {
			out = append(out, d)
		}
	}
	return out, nil
}

func TestReplicasAddUpWhatTheyLearnedThroughTheStore(t *testing.T) {
	ctx := context.Background()
	st := &memorySchemas{docs: map[string][]byte{}}
	rules := schemaRules(t, config.Compare{})
	key := SchemaKey{"GET", 200}
	a, b := NewSchemas(), NewSchemas()
	for i := range MinEvidence {
		a.Route("get-patient").Learn(key, Asked{}, patientAnswer(i), rules)
		b.Route("get-patient").Learn(key, Asked{}, patientAnswer(i), rules)
	}
	st.fail = true
	if err := a.Flush(ctx, st); err == nil {
		t.Fatal("a flush to a store that is down reported no error")
	}
	st.fail = false
	for _, s := range []*Schemas{a, b, a} {
		if err := s.Flush(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	stored, err := a.Stored(ctx, st, "get-patient")
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 1 || stored[0].Answers != 2*MinEvidence {
		t.Fatalf("stored %+v, want one schema of %d answers: the failed flush's answers kept, none twice", stored, 2*MinEvidence)
	}
	// Each replica now checks against all of them.
	modern := jsonAnswer(200, `{"id":1}`)
	if got := b.Route("get-patient").Check(key, modern, rules); len(got) == 0 {
		t.Error("b does not check against what a learned")
	}

	t.Run("keys that add up to many across replicas make a map", func(t *testing.T) {
		for r, s := range []*Schemas{a, b} {
			var fields []string
			for i := range maxProperties/2 + 1 {
				fields = append(fields, fmt.Sprintf(`"k%c_f%d":1`, 'a'+r, i))
			}
			for range MinEvidence {
				s.Route("wide").Learn(key, Asked{}, jsonAnswer(200, `{"wide":{`+strings.Join(fields, ",")+`}}`), rules)
			}
			if err := s.Flush(ctx, st); err != nil {
				t.Fatal(err)
			}
		}
		stored, err := a.Stored(ctx, st, "wide")
		if err != nil || len(stored) != 1 {
			t.Fatalf("stored %v, %v", stored, err)
		}
		if w := stored[0].Root.Properties["wide"]; w.Map == nil || len(w.Properties) != 0 {
			t.Errorf("%d keys learned by two replicas stay %d properties, want a map", maxProperties+2, len(w.Properties))
		}
	})
	t.Run("a new replica loads the stored schemas before checking", func(t *testing.T) {
		c := NewSchemas().Route("get-patient")
		if err := c.Load(ctx, st, time.Now()); err != nil {
			t.Fatal(err)
		}
		if got := c.Check(key, modern, rules); len(got) == 0 {
			t.Error("a fresh replica does not check against the stored schema")
		}
	})
}

func TestDriftIsReportedWithWhatLegacySends(t *testing.T) {
	ctx := context.Background()
	st := &memorySchemas{docs: map[string][]byte{}}
	rules := schemaRules(t, config.Compare{Maps: []string{"contacts"}})
	s := NewSchemas()
	l := s.Route("get-patient")
	key := SchemaKey{"GET", 200}
	for i := range 12 {
		l.Learn(key, Asked{}, patientAnswer(i), rules)
	}
	for _, body := range []string{`{"id":1,"visits":"3"}`, `{"id":1}`, `[1]`} {
		l.Check(key, jsonAnswer(200, body), rules)
	}
	stored, err := s.Stored(ctx, st, "get-patient")
	if err != nil || len(stored) != 1 {
		t.Fatalf("stored %v, %v", stored, err)
	}
	got := stored[0].Drifts()
	if len(got) < 3 {
		t.Fatalf("drifts %+v", got)
	}
	if got[0].Count != 2 || got[len(got)-1].Count != 1 {
		t.Errorf("drifts %+v, want the most frequent first", got)
	}
	if !slices.ContainsFunc(got, func(d DriftReport) bool {
		return d.Path == "address" && d.Kind == DriftMissing && d.Count == 2 && d.Presence == 1 && slices.Equal(d.LegacyTypes, []string{"object"})
	}) {
		t.Errorf("drifts %+v lack address missing twice, an object legacy always sends", got)
	}
	if !slices.ContainsFunc(got, func(d DriftReport) bool {
		return d.Path == "body" && d.Kind == DriftType && d.Count == 1 && slices.Equal(d.ModernTypes, []string{"array"})
	}) {
		t.Errorf("drifts %+v lack the array modern sent for the whole body", got)
	}
	if !slices.ContainsFunc(got, func(d DriftReport) bool {
		return d.Path == "visits" && d.Kind == DriftType && slices.Equal(d.LegacyTypes, []string{"integer"}) && slices.Equal(d.ModernTypes, []string{"string"})
	}) {
		t.Errorf("drifts %+v lack visits sent as a string", got)
	}
}

func FuzzSchemaLearnsAndChecksAnyAnswer(f *testing.F) {
	f.Add([]byte(`{"id":1,"a":{"MRN1":{"x":[1,2.5,null]}}}`), []byte(`{"id":"1"}`))
	f.Add([]byte(`[[[[{}]]]]`), []byte(`null`))
	f.Add([]byte(`{"k\u0000":"\ud800","status":"x"}`), []byte(`{"status":1e400}`))
	rules, err := NewSchemaRules(config.Compare{KeepValues: []string{"status"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, legacy, modern []byte) {
		l := NewSchemas().Route("r")
		key := SchemaKey{"GET", 200}
		for range MinEvidence {
			l.Learn(key, Asked{}, jsonAnswer(200, string(legacy)), rules)
		}
		l.Check(key, jsonAnswer(200, string(modern)), rules)
		s := l.known[key]
		if s == nil {
			return
		}
		if n := s.Root.size(); n > maxShapes {
			t.Fatalf("%d places, more than %d", n, maxShapes)
		}
		b, err := MarshalSchema(s)
		if err != nil {
			t.Fatal(err)
		}
		back, err := UnmarshalSchema(b)
		if err != nil {
			t.Fatalf("a schema does not read back: %v\n%s", err, b)
		}
		if _, err := json.Marshal(back.JSONSchema()); err != nil {
			t.Fatal(err)
		}
		if !json.Valid(legacy) && s.Answers > 0 {
			t.Fatalf("learned from invalid JSON %q", legacy)
		}
	})
}

// TestAnAnswerWithAByteOrderMarkIsLearned: legacy's answers behind a UTF-8
// byte order mark (a PHP file saved with one) are JSON to their clients,
// and to schema learning as to the comparison (DecodeBody skips the mark):
// before, no answer of such a legacy was learned, so modern's drift from it
// was never reported.
func TestAnAnswerWithAByteOrderMarkIsLearned(t *testing.T) {
	rules := schemaRules(t, config.Compare{})
	l := NewSchemas().Route("get-patient")
	if !l.Learn(SchemaKey{"GET", 200}, Asked{}, jsonAnswer(200, "\uFEFF{\"id\":1}"), rules) {
		t.Fatal("an answer behind a byte order mark was not learned")
	}
	if p := l.known[SchemaKey{"GET", 200}].Root.Properties["id"]; p == nil {
		t.Error("its id was not learned")
	}
}
