package upstream

import "testing"

// TestLocalTurnsTheBackendsOwnURLsIntoPathsOnTheFacade: a Location that
// points at the backend itself reached the client as it was, a redirect
// to an address only the facade can reach that named the backend's host
// and port. It is a path on the facade now, the inverse of Target; a URL
// on any other host, or outside the base path, is left alone, and no
// rewrite makes a reference to another host.
func TestLocalTurnsTheBackendsOwnURLsIntoPathsOnTheFacade(t *testing.T) {
	for _, tc := range []struct {
		base, loc string
		want      string
	}{
		{"http://legacy.internal:8080", "http://legacy.internal:8080/patients/7?x=1#top", "/patients/7?x=1#top"},
		{"http://legacy.internal:8080", "HTTP://LEGACY.internal:8080/login", "/login"},
		{"http://legacy.internal:8080", "//legacy.internal:8080/login", "/login"},
		{"http://legacy.internal:8080", "http://legacy.internal:8080", "/"},
		{"http://legacy.internal:8080", "http://legacy.internal:8080?next=%2Fa", "/?next=%2Fa"},
		{"http://legacy.internal", "http://legacy.internal:80/a", "/a"},
		{"https://legacy.internal", "https://legacy.internal/a", "/a"},
		{"http://10.0.0.7:8080/api", "http://10.0.0.7:8080/api/patients/7", "/patients/7"},
		{"http://10.0.0.7:8080/api/", "http://10.0.0.7:8080/api", "/"},
		{"http://[::1]:8080", "http://[::1]:8080/a%2Fb", "/a%2Fb"},
		// Never another host's reference.
		{"http://legacy.internal:8080", "http://legacy.internal:8080//evil.example/x", "/.//evil.example/x"},
		{"http://legacy.internal:8080", `http://legacy.internal:8080/\evil.example`, "/%5Cevil.example"},
		{"http://legacy.internal:8080/api", "http://legacy.internal:8080/api//evil.example", "/.//evil.example"},
		// Left alone: not this backend, or no path on the facade reaches it.
		{"http://legacy.internal:8080", "/patients/7", "/patients/7"},
		{"http://legacy.internal:8080", "https://api.example.com/patients/7", "https://api.example.com/patients/7"},
		{"http://legacy.internal:8080", "http://legacy.internal:8081/a", "http://legacy.internal:8081/a"},
		{"http://legacy.internal:8080", "https://legacy.internal:8080.evil.example/a", "https://legacy.internal:8080.evil.example/a"},
		{"http://legacy.internal", "https://legacy.internal/a", "https://legacy.internal/a"},
		{"http://legacy.internal:8080", "http://user@legacy.internal:8080/a", "http://user@legacy.internal:8080/a"},
		{"http://legacy.internal:8080/api", "http://legacy.internal:8080/apix", "http://legacy.internal:8080/apix"},
		{"http://legacy.internal:8080/api", "http://legacy.internal:8080/other", "http://legacy.internal:8080/other"},
		{"http://legacy.internal:8080", "http://legacy.internal:8080/%zz", "http://legacy.internal:8080/%zz"},
	} {
		u := New("legacy", Config{URL: mustURL(t, tc.base)})
		got, ok := u.Local(tc.loc)
		if got != tc.want || ok != (got != tc.loc) {
			t.Errorf("Location %s from %s: got %s (%v), want %s", tc.loc, tc.base, got, ok, tc.want)
		}
	}
}
