package canonical

import (
	"errors"
	"net/url"
	"path"
	"strings"
	"testing"
)

// spellings are the paths the canonical form is tested on: every spelling
// of the issue that asked for it, and the rest of their classes. want is
// the canonical path, or "" when the path is refused with err.
var spellings = []struct {
	in, want string
	slash    bool
	err      error
}{
	// Already canonical.
	{in: "/", want: "/"},
	{in: "/records", want: "/records"},
	{in: "/records/", want: "/records/"},
	{in: "/records/4", want: "/records/4"},
	{in: "/a/b:c@d!$&'()*+,=", want: "/a/b:c@d!$&'()*+,="},
	{in: "/caf%C3%A9", want: "/caf%C3%A9"},
	{in: "/a%2Fb", want: "/a%2Fb", slash: true},
	{in: "/a%25", want: "/a%25"},
	{in: "/...", want: "/..."},
	{in: "/a/..b/c..", want: "/a/..b/c.."},
	// Encoded unreserved characters are decoded.
	{in: "/%72ecords", want: "/records"},
	{in: "/records/%34", want: "/records/4"},
	{in: "/%7e%7E%2D%5F%2e", want: "/~~-_."},
	{in: "/%41%5a%61%7a%30%39", want: "/AZaz09"},
	// Other encodings are kept, in upper-case hex.
	{in: "/a%3ab", want: "/a%3Ab"},
	{in: "/caf%c3%a9", want: "/caf%C3%A9"},
	{in: "/records%2f", want: "/records%2F", slash: true},
	{in: "/a%2fb%2F", want: "/a%2Fb%2F", slash: true},
	// Bytes that may not appear raw are encoded.
	{in: "/café", want: "/caf%C3%A9"},
	{in: "/a b", want: "/a%20b"},
	{in: `/a"<>^|{}[]`, want: "/a%22%3C%3E%5E%7C%7B%7D%5B%5D"},
	{in: "/p#frag", want: "/p%23frag"},
	// Dot segments are removed, also encoded.
	{in: "/reports/../admin", want: "/admin"},
	{in: "/reports//..//admin", want: "/admin"},
	{in: "/patients/./1", want: "/patients/1"},
	{in: "/patients/%2e/1", want: "/patients/1"},
	{in: "/a/b/%2e%2e/c", want: "/a/c"},
	{in: "/a/b/.%2E/c", want: "/a/c"},
	{in: "/a/b/..", want: "/a/"},
	{in: "/a/b/.", want: "/a/b/"},
	{in: "/a/..", want: "/"},
	{in: "/.", want: "/"},
	{in: "/%2e", want: "/"},
	// Runs of slashes are merged; a trailing slash stays.
	{in: "/patients//1", want: "/patients/1"},
	{in: "//", want: "/"},
	{in: "///a///b///", want: "/a/b/"},
	{in: "/records//", want: "/records/"},
	// Climbing above the root.
	{in: "/..", err: errAboveRoot},
	{in: "/../a", err: errAboveRoot},
	{in: "/a/../..", err: errAboveRoot},
	{in: "/reports/%2e%2e/%2e%2e/admin", err: errAboveRoot},
	{in: "/%2E%2E/", err: errAboveRoot},
	{in: "/.%2e/x", err: errAboveRoot},
	// Backslashes, raw and encoded.
	{in: `/a\b`, err: errBackslash},
	{in: `/patients/%5c..%5cadmin`, err: errBackslash},
	{in: "/x%5C", err: errBackslash},
	// Control characters, raw and encoded.
	{in: "/patients/%00", err: errControl},
	{in: "/a%0d%0aX-Injected:%20yes", err: errControl},
	{in: "/x%1f", err: errControl},
	{in: "/x%7F", err: errControl},
	{in: "/a\x00b", err: errControl},
	{in: "/a\tb", err: errControl},
	{in: "/a\x7fb", err: errControl},
	// Invalid percent-encodings.
	{in: "/a%zz", err: errBadEscape},
	{in: "/a%4", err: errBadEscape},
	{in: "/a%", err: errBadEscape},
	{in: "/%u002e%u002e/x", err: errBadEscape},
	// Spellings a backend reads as a dot segment.
	{in: "/patients/..%2fadmin", err: errDotInSlash},
	{in: "/patients/..%2Fadmin", err: errDotInSlash},
	{in: "/a/x%2F..", err: errDotInSlash},
	{in: "/a/%2F.%2Fb", err: errDotInSlash},
	{in: "/patients/..;/admin", err: errParams},
	{in: "/patients/.;x/1", err: errParams},
	{in: "/patients/%2e%2e;x/1", err: errParams},
	{in: "/records;jsessionid=1", err: errParams},
	{in: "/records;", err: errParams},
	{in: "/records;x/4", err: errParams},
	{in: "/records/4;v=2", err: errParams},
	{in: "/records%3Bjsessionid=1", err: errParams},
	{in: "/records%3bx/4", err: errParams},
	// Spellings a backend decoding twice, or leniently, reads as another
	// path; as IIS's request filtering (allowDoubleEscaping: false).
	{in: "/a%252e%252e/b", err: errDoubleEscape},
	{in: "/records%252F4", err: errDoubleEscape},
	{in: "/records%25%32%46", err: errDoubleEscape},
	{in: "/x%25%35c", err: errDoubleEscape},
	{in: "/%C0%AE%C0%AE/admin", err: errOverlong},
	{in: "/records%c0%af4", err: errOverlong},
	{in: "/a%C1%9C", err: errOverlong},
	{in: "/a%C0%80", err: errOverlong},      // NUL, as Java's modified UTF-8 writes it
	{in: "/a%C1%BF", err: errOverlong},      // DEL: the last continuation byte
	{in: "/a%E0%9F%BF/b", err: errOverlong}, // U+07FF in three bytes
	{in: "/a%E0%80%AF", err: errOverlong},
	{in: "/a%F0%80%80%AF", err: errOverlong},
	{in: "/caf%C0", want: "/caf%C0"},
	{in: "/%C0x", want: "/%C0x"},
	{in: "/%E0%A4%85", want: "/%E0%A4%85"},
	{in: "/%F0%9F%98%80", want: "/%F0%9F%98%80"},
	// Not a path.
	{in: "", err: errNotAPath},
	{in: "records", err: errNotAPath},
}

func TestCanonicalize(t *testing.T) {
	for _, c := range spellings {
		t.Run(c.in, func(t *testing.T) {
			got, err := Canonicalize(c.in)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("Canonicalize(%q) = %q, %v; want the refusal %q", c.in, got.Escaped, err, c.err)
				}
				return
			}
			if err != nil || got.Escaped != c.want || got.EncodedSlash != c.slash {
				t.Fatalf("Canonicalize(%q) = %q (encoded slash %v), %v; want %q (encoded slash %v)", c.in, got.Escaped, got.EncodedSlash, err, c.want, c.slash)
			}
		})
	}
}

func TestRouteKeyIgnoresATrailingSlash(t *testing.T) {
	for in, want := range map[string]string{"/records/": "/records", "/records": "/records", "/": "/", "/a/b/": "/a/b"} {
		if got := RouteKey(in); got != want {
			t.Errorf("RouteKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDecodedIsThePathAsURLHoldsIt(t *testing.T) {
	for in, want := range map[string]string{"/records/4": "/records/4", "/caf%C3%A9": "/café", "/a%2Fb": "/a/b", "/a%25": "/a%"} {
		if got := (Path{Escaped: in}).Decoded(); got != want {
			t.Errorf("Decoded(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestACanonicalPathCostsNoAllocation(t *testing.T) {
	for _, p := range []string{"/patients/42/photos", "/caf%C3%A9/a%2Fb/", "/"} {
		allocs := testing.AllocsPerRun(100, func() {
			if got, err := Canonicalize(p); err != nil || got.Escaped != p {
				t.Fatalf("Canonicalize(%q) = %q, %v", p, got.Escaped, err)
			}
		})
		if allocs != 0 {
			t.Errorf("Canonicalize(%q) allocates %v times, want 0", p, allocs)
		}
	}
}

// FuzzCanonical checks the canonical form against what a normalising
// backend makes of a path (decode every percent-encoding, then
// path.Clean): the facade decides on the path such a backend serves. It
// also checks that canonicalizing twice changes nothing, so that the path
// forwarded is routed as the path received, and that no output holds a
// dot segment or an empty one.
func FuzzCanonical(f *testing.F) {
	for _, c := range spellings {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := Canonicalize(in)
		if err != nil {
			var r *Refusal
			if !errors.As(err, &r) || r.Status != 400 && r.Status != 405 {
				t.Fatalf("Canonicalize(%q) failed with %v, want a refusal", in, err)
			}
			return
		}
		out := got.Escaped
		again, err := Canonicalize(out)
		if err != nil || again != got {
			t.Fatalf("Canonicalize(%q) = %q, but that canonicalizes to %q, %v", in, out, again.Escaped, err)
		}
		if RouteKey(again.Escaped) != RouteKey(out) {
			t.Fatalf("%q routes as %q but is forwarded as %q", in, RouteKey(out), RouteKey(again.Escaped))
		}
		for _, bad := range []string{"//", "/./", "/../", "\\"} {
			if strings.Contains(out, bad) {
				t.Fatalf("Canonicalize(%q) = %q, which holds %q", in, out, bad)
			}
		}
		if strings.HasSuffix(out, "/.") || strings.HasSuffix(out, "/..") {
			t.Fatalf("Canonicalize(%q) = %q, which ends in a dot segment", in, out)
		}
		if got.EncodedSlash != strings.Contains(out, "%2F") {
			t.Fatalf("Canonicalize(%q) = %q with encoded slash %v", in, out, got.EncodedSlash)
		}
		key := RouteKey(out)
		if folded, err := Fold(key); err == nil {
			if again, err := Fold(folded); err != nil || again != folded {
				t.Fatalf("Fold(%q) = %q, which folds to %q, %v", key, folded, again, err)
			}
		} else if !strings.Contains(key, "%EF%B") {
			t.Fatalf("Fold(%q) refused a path without fullwidth forms: %v", key, err)
		}
		// A backend decoding twice reads what the facade decided on.
		if once := got.Decoded(); strings.Contains(once, "%") {
			if twice, err := url.PathUnescape(once); err == nil && twice != once {
				t.Fatalf("Canonicalize(%q) = %q, which decodes to %q once and %q twice", in, out, once, twice)
			}
		}
		if got.EncodedSlash {
			return // a backend decoding %2F sees other segments: the route must allow it
		}
		decoded, err := url.PathUnescape(in)
		if err != nil {
			t.Fatalf("Canonicalize(%q) accepted a path Go cannot decode: %v", in, err)
		}
		if backend, facade := path.Clean(decoded), RouteKey(got.Decoded()); backend != facade {
			t.Fatalf("%q: a normalising backend serves %q, the facade decided on %q", in, backend, facade)
		}
	})
}

func BenchmarkCanonicalize(b *testing.B) {
	for _, p := range []string{"/r5000/items/42", "/r5000/%69tems//42/./"} {
		b.Run(p, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Canonicalize(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
