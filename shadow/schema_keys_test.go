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
		s.Route("contacts").Learn(key, contactsAnswer(i), rules)
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
			s.Route("contacts").Learn(key, jsonAnswer(200, `{"id":1,"status":"active","contacts":{},"guardians":{}}`), rules)
		}
		if err := s.Flush(ctx, st); err != nil {
			t.Fatal(err)
		}
		other := NewSchemas()
		other.Route("contacts").Learn(key, jsonAnswer(200, `{"id":1,"status":"active","contacts":{},"guardians":{"Quimbyfrost":{"phone":"555-0100"}}}`), rules)
		if err := other.Flush(ctx, st); err != nil {
			t.Fatal(err)
		}
		doc := st.written[len(st.written)-1]
		if strings.Contains(doc, "Quimbyfrost") || !strings.Contains(doc, `"guardians"`) {
			t.Errorf("after one answer: %s, want the new field guardians and none of its keys", doc)
		}
	})
}

// TestStoredKeysThatAreDataAreDroppedOnLoad: a schema an earlier release
// stored with keys that are data, too many keys, or keys of a place seen
// too few times, is read without them.
func TestStoredKeysThatAreDataAreDroppedOnLoad(t *testing.T) {
	var names []string
	for _, s := range surnames {
		names = append(names, fmt.Sprintf(`%q:{"types":{"object":1},"properties":{"phone":{"types":{"string":1}}}}`, s))
	}
	doc := `{"route":"r","method":"GET","status":200,"answers":12,"root":{"types":{"object":12},"properties":{
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
}
