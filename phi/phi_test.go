package phi_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"

	"strangler/phi"
)

func TestPathsKeepTheRoutesWordsAndHashItsParameters(t *testing.T) {
	h := phi.RandomHasher()
	hash := h.Hash
	for _, tc := range []struct {
		pattern, path, want string
	}{
		{"/sh/{id}/photos", "/sh/MRN9988776/photos", "/sh/{id:" + hash("MRN9988776") + "}/photos"},
		{"/patients/{id:[0-9]+}", "/patients/42", "/patients/{id:" + hash("42") + "}"},
		{"/clinics/{cid}/patients", "/clinics/7/patients/42", "/clinics/{cid:" + hash("7") + "}/patients/{" + hash("42") + "}"},
		{"/records", "/records/", "/records/"},
		{"/files/*", "/files/a/Jane Doe.pdf", "/files/{*:" + hash("a/Jane Doe.pdf") + "}"},
		{"/a/{x}-{y}", "/a/1-2", "/a/{" + hash("1-2") + "}"},
		{"/patients/{id}", "/patients/Jane%20Doe", "/patients/{id:" + hash("Jane Doe") + "}"},
		{"", "/records/MRN9988776", "/{" + hash("records") + "}/{" + hash("MRN9988776") + "}"},
		{"/patients", "/other/42", "/{" + hash("other") + "}/{" + hash("42") + "}"},
	} {
		if got := h.Path(tc.pattern, tc.path); got != tc.want {
			t.Errorf("Path(%q, %q) = %q, want %q", tc.pattern, tc.path, got, tc.want)
		}
	}
}

func TestQueriesKeepNamesAndHashValues(t *testing.T) {
	h := phi.RandomHasher()
	got := h.Target("/search", "/search?ssn=123-45-6789&name=Jane+Doe&flag&&page=2")
	want := "/search?ssn={" + h.Hash("123-45-6789") + "}&name={" + h.Hash("Jane Doe") + "}&{" + h.Hash("flag") + "}&&page={" + h.Hash("2") + "}"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestQueryNamesThatAreDataAreHashedAsValuesAre(t *testing.T) {
	h := phi.RandomHasher()
	hash := h.Hash
	for _, tc := range []struct{ pattern, target, want string }{
		// A record number, an SSN and a name with a space as names.
		{"/search", "/search?mrn7730019=1&987-65-4329=x&Jane%20Doe=&full=1",
			"/search?{" + hash("mrn7730019") + "}={" + hash("1") + "}&{" + hash("987-65-4329") + "}={" + hash("x") + "}&{" + hash("Jane Doe") + "}={" + hash("") + "}&full={" + hash("1") + "}"},
		// A short record number as a name: four digits pass the digit
		// count, and only a leading letter makes a name a field's.
		{"/search", "/search?4711=1", "/search?{" + hash("4711") + "}={" + hash("1") + "}"},
		// A name that reads like a field name but is a path parameter or
		// another query value of the request, in any case.
		{"/patients/{id}", "/patients/MRN-7Q4Z-TEST?mrn-7q4z-test=visits",
			"/patients/{id:" + hash("MRN-7Q4Z-TEST") + "}?{" + hash("mrn-7q4z-test") + "}={" + hash("visits") + "}"},
		{"/search", "/search?q=Quimbyfrost&Quimbyfrost=1",
			"/search?q={" + hash("Quimbyfrost") + "}&{" + hash("Quimbyfrost") + "}={" + hash("1") + "}"},
	} {
		if got := h.Target(tc.pattern, tc.target); got != tc.want {
			t.Errorf("Target(%q, %q) = %q, want %q", tc.pattern, tc.target, got, tc.want)
		}
	}
}

func TestHashesAreKeyedStableAndShort(t *testing.T) {
	key := phi.NewKey()
	a, b := phi.NewHasher(&key), phi.NewHasher(&key)
	other := phi.RandomHasher()
	if a.Hash("Jane Doe") != b.Hash("Jane Doe") {
		t.Error("one key hashes a value two ways")
	}
	if a.Hash("Jane Doe") == other.Hash("Jane Doe") {
		t.Error("two keys hash a value alike")
	}
	if a.Hash("Jane Doe") == a.Hash("Jane Dow") {
		t.Error("two values hash alike")
	}
	if got := a.Hash("x"); !regexp.MustCompile(`^h:[0-9a-f]{16}$`).MatchString(got) {
		t.Errorf("got hash %q, want h: and 16 hex digits", got)
	}
	d := a.Digest("resource", "/patients/42")
	if !regexp.MustCompile(`^h:[0-9a-f]{32}$`).MatchString(d) || d == a.Digest("repair-key", "/patients/42") {
		t.Errorf("got digest %q, want h: and 32 hex digits, different for another purpose", d)
	}
	if strings.HasPrefix(d, a.Hash("/patients/42")) {
		t.Error("a digest starts like the value's hash: the two can be linked")
	}
}

func TestAHasherWithoutAKeyShowsNothing(t *testing.T) {
	h := phi.NewHasher(nil)
	if h.Ready() {
		t.Fatal("a hasher without a key says it is ready")
	}
	if got := h.Path("/p/{id}", "/p/MRN9988776"); strings.Contains(got, "MRN") || !strings.Contains(got, "unavailable") {
		t.Errorf("got %q, want the value hidden and the hash marked unavailable", got)
	}
	h.SetKey(phi.NewKey())
	if !h.Ready() || strings.Contains(h.Hash("x"), "unavailable") {
		t.Error("a hasher given a key does not hash")
	}
}

func TestParamsAreWhatTargetHides(t *testing.T) {
	got := phi.Params("/clinics/{cid}/patients", "/clinics/7/patients/Jane%20Doe?q=a+b&flag")
	want := []phi.Param{{Segment: 2, Name: "cid", Value: "7"}, {Segment: 4, Value: "Jane Doe"}, {Segment: -1, Name: "q", Value: "a b"}, {Segment: -1, Value: "flag"}}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("param %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestHashesStayTheHMACsEarlierReleasesKept: a digest and a hash are the
// HMAC-SHA256 of the purpose, a zero byte and the value, as earlier
// releases computed them: the journal keys writes by resource digests it
// kept, and a write journaled now must queue behind one to the same
// resource journaled before an upgrade. A long value hashed between two
// short ones leaves nothing of itself in the next one's input.
func TestHashesStayTheHMACsEarlierReleasesKept(t *testing.T) {
	key := phi.NewKey()
	h := phi.NewHasher(&key)
	want := func(purpose, value string, n int) string {
		m := hmac.New(sha256.New, key[:])
		m.Write([]byte(purpose + "\x00" + value))
		return "h:" + hex.EncodeToString(m.Sum(nil)[:n])
	}
	for _, value := range []string{"/patients/42", strings.Repeat("Jane Doe ", 1000), "", "/patients/4"} {
		if got, want := h.Digest("resource", value), want("resource", value, 16); got != want {
			t.Errorf("Digest(resource, %.20q) = %s, want %s", value, got, want)
		}
		if got, want := h.Hash(value), want("value", value, 8); got != want {
			t.Errorf("Hash(%.20q) = %s, want %s", value, got, want)
		}
		if got, want := string(h.AppendHash([]byte("x"), []byte(value))), "x"+want("value", value, 8); got != want {
			t.Errorf("AppendHash(x, %.20q) = %s, want %s", value, got, want)
		}
	}
}
