package domain

import "testing"

// TestANumberIsOneValueHoweverSpelled checks that both places that
// evaluate a number at a field path agree: FieldPath.Find gives spellings
// of one value the same text, and NumbersEqual (which shadow comparisons
// use) finds them equal.
func TestANumberIsOneValueHoweverSpelled(t *testing.T) {
	id, err := ParseFieldPath("id")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spellings []string
		want      string
	}{
		{[]string{"1", "1.0", "1e0", "10e-1", "0.1e1", "1E+0"}, "1"},
		{[]string{"0", "-0", "0.000", "0e5"}, "0"},
		{[]string{"1000", "1e3", "1.000e3"}, "1000"},
		{[]string{"-0.25", "-25e-2", "-2.50e-1"}, "-0.25"},
		{[]string{"12.5", "1.25e1", "125e-1"}, "12.5"},
		{[]string{"9007199254740993"}, "9007199254740993"},
		{[]string{"1e40", "10e39"}, "1e40"},
		{[]string{"1e1000000000000000000000"}, "1e1000000000000000000000"},
	} {
		for _, s := range tc.spellings {
			got, ok := id.Find([]byte(`{"id": ` + s + `}`))
			if !ok || got != tc.want {
				t.Errorf("Find(id) in {\"id\": %s} = %q, %v; want %q", s, got, ok, tc.want)
			}
			if !NumbersEqual([]byte(s), []byte(tc.spellings[0])) {
				t.Errorf("NumbersEqual(%s, %s) = false", s, tc.spellings[0])
			}
		}
	}
}
