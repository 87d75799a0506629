package shadow

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"strangler/config"
)

// surnames key the contacts of the answers in these tests: names that
// read like field names, as surnames do.
var surnames = []string{"Quimbyfrost", "smith", "Okonkwo", "garcia", "Lindqvist", "nguyen", "Abernathy", "ferreira", "Kowalczyk", "tanaka", "Moreau", "haddad"}

// contactsAnswer is an answer whose contacts are keyed by surname.
func contactsAnswer(i int) Response {
	return jsonAnswer(200, fmt.Sprintf(`{"id":%d,"status":"active","contacts":{%q:{"phone":"555-01%02d"}}}`, i, surnames[i%len(surnames)], i))
}

// TestKeysThatAreDataAreNeverStored: an object keyed by surnames, which
// read like field names, is learned as a map before any surname reaches
// the store, even when the replica flushes after every answer; the field
// names of the answers are stored once the place has settled.
func TestKeysThatAreDataAreNeverStored(t *testing.T) {
	ctx := context.Background()
	rules := schemaRules(t, config.Compare{})
	key := SchemaKey{"GET", 200}
	st := &memorySchemas{docs: map[string][]byte{}}
	s := NewSchemas()
	for i := range len(surnames) {
		s.Route("contacts").Learn(key, Asked{}, contactsAnswer(i), rules)
		if err := s.Flush(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	for n, doc := range st.written {
		for _, name := range surnames {
			if strings.Contains(strings.ToLower(doc), strings.ToLower(name)) {
				t.Errorf("stored document %d holds the surname %s: %s", n+1, name, doc)
			}
		}
	}
	stored, err := s.Stored(ctx, st, "contacts")
	if err != nil || len(stored) != 1 {
		t.Fatalf("stored %v, %v", stored, err)
	}
	root := stored[0].Root
	for _, field := range []string{"id", "status", "contacts"} {
		if p := root.Properties[field]; p == nil || !root.alwaysSends(p) {
			t.Errorf("the field %q was not stored as always sent once the root settled: %v", field, sortedKeys(root.Properties))
		}
	}
	if c := root.Properties["contacts"]; c == nil || c.Map == nil || len(c.Properties) != 0 || c.Map.Properties["phone"] == nil {
		t.Errorf("contacts keyed by %d surnames are not a map of contacts: %+v", len(surnames), c)
	}

	t.Run("one answer's keys wait for the replica's own evidence", func(t *testing.T) {
		// The store knows the route well, guardians always empty;
		// another replica's one answer brings guardians keyed by a
		// surname.
		for range MinEvidence {
			s.Route("contacts").Learn(key, Asked{}, jsonAnswer(200, `{"id":1,"status":"active","contacts":{},"guardians":{}}`), rules)
		}
		if err := s.Flush(ctx, st); err != nil {
			t.Fatal(err)
		}
		other := NewSchemas()
		other.Route("contacts").Learn(key, Asked{}, jsonAnswer(200, `{"id":1,"status":"active","contacts":{},"guardians":{"Quimbyfrost":{"phone":"555-0100"}}}`), rules)
		if err := other.Flush(ctx, st); err != nil {
			t.Fatal(err)
		}
		doc := st.written[len(st.written)-1]
		if strings.Contains(doc, "Quimbyfrost") || !strings.Contains(doc, `"guardians"`) {
			t.Errorf("after one answer: %s, want the new field guardians and none of its keys", doc)
		}
	})
}

// TestStoredKeysThatAreDataAreDroppedOnLoad: a stored schema with keys
// that are data, too many keys, or keys of a place seen too few times, is
// read without them; one stored before keys had to come with varied
// requests is read without any key.
func TestStoredKeysThatAreDataAreDroppedOnLoad(t *testing.T) {
	var names []string
	for _, s := range surnames {
		names = append(names, fmt.Sprintf(`%q:{"types":{"object":1},"properties":{"phone":{"types":{"string":1}}}}`, s))
	}
	doc := `{"route":"r","method":"GET","status":200,"answers":12,"key_rule":1,"root":{"types":{"object":12},"properties":{
		"id":{"types":{"integer":12}},
		"visits_by_mrn":{"types":{"object":12},"properties":{"MRN7730019":{"types":{"object":12}}}},
		"contacts":{"types":{"object":12},"properties":{` + strings.Join(names, ",") + `}},
		"guardians":{"types":{"object":2},"properties":{"Quimbyfrost":{"types":{"object":2}}}}}},
		"drift":{"contacts.smith.phone":{"missing":1,"modern_types":{}}}}`
	s, err := UnmarshalSchema([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := MarshalSchema(s)
	for _, name := range append([]string{"MRN7730019"}, surnames...) {
		if strings.Contains(strings.ToLower(string(b)), strings.ToLower(name)) {
			t.Errorf("loaded schema keeps %s: %s", name, b)
		}
	}
	root := s.Root
	if root.Properties["id"] == nil || root.Properties["visits_by_mrn"].Map == nil || root.Properties["contacts"].Map == nil {
		t.Errorf("loaded schema: %s, want id kept, visits_by_mrn and contacts maps", b)
	}
	if g := root.Properties["guardians"]; g == nil || len(g.Properties) != 0 {
		t.Errorf("guardians, seen twice, keeps its keys: %s", b)
	}

	t.Run("an earlier rule's keys are all dropped", func(t *testing.T) {
		old := `{"route":"r","method":"GET","status":200,"answers":12,"root":{"types":{"object":12},"properties":{
			"id":{"types":{"integer":12}},
			"Zyxwvut":{"types":{"object":12},"properties":{"name":{"types":{"string":12}}}}}}}`
		s, err := UnmarshalSchema([]byte(old))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := MarshalSchema(s)
		if strings.Contains(string(b), "Zyxwvut") || s.Root.Properties != nil || s.Root.Types[typeObject] != 12 {
			t.Errorf("loaded %s, want the root's 12 objects and no key", b)
		}
	})
}

// TestKeysThatComeWithOneRequestAreNeverStored: a key that is data comes
// only with the request that names it, however often that request comes:
// a record fetched again and again keyed by its record number, or a
// search by surname keyed by the surname on every page. Such a key reads
// like a field name and is the only key of its object, so neither its
// shape nor the cardinality rule gives it away; it is never stored,
// while the answers' field names are once other records were asked for.
func TestKeysThatComeWithOneRequestAreNeverStored(t *testing.T) {
	ctx := context.Background()
	rules := schemaRules(t, config.Compare{})
	key := SchemaKey{"GET", 200}
	const mrn, surname = "MRN-7Q4Z-TEST", "Zyxwvut"
	for _, tc := range []struct {
		name, pattern string
		fields        int
		// ask is the i-th request and its answer, i < 20 being the
		// same record or surname every time, then others.
		ask func(i int) (target, body string)
	}{
		{"a record keyed by its number", "/patients/{id}", 3, func(i int) (string, string) {
			id := mrn
			if i >= 20 {
				id = fmt.Sprintf("MRN-%04d", i)
			}
			return "/patients/" + id, fmt.Sprintf(`{"id":%q,"status":"active","visits":{%q:{"count":%d}}}`, id, id, i)
		}},
		{"a search keyed by the surname on every page", "/patients", 2, func(i int) (string, string) {
			name := surname
			if i >= 20 {
				name = surnames[i%len(surnames)]
			}
			return fmt.Sprintf("/patients?surname=%s&page=%d", name, i%3), fmt.Sprintf(`{"page":%d,"found":{%q:[{"given":"x"}]}}`, i%3, name)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &memorySchemas{docs: map[string][]byte{}}
			s := NewSchemas()
			for i := range 40 {
				target, body := tc.ask(i)
				s.Route("r").Learn(key, Asked{Pattern: tc.pattern, Target: target}, jsonAnswer(200, body), rules)
				if err := s.Flush(ctx, st); err != nil {
					t.Fatal(err)
				}
			}
			for n, doc := range st.written {
				if strings.Contains(doc, mrn) || strings.Contains(doc, surname) {
					t.Fatalf("stored document %d holds the request's data as a key: %s", n+1, doc)
				}
			}
			stored, err := s.Stored(ctx, st, "r")
			if err != nil || len(stored) != 1 {
				t.Fatalf("stored %v, %v", stored, err)
			}
			if got := sortedKeys(stored[0].Root.Properties); len(got) != tc.fields {
				t.Errorf("stored fields %v, want the answers' %d field names", got, tc.fields)
			}
		})
	}
}
