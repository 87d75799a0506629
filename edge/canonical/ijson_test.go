package canonical

import (
	"encoding/binary"
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode/utf16"
)

// utf16LE, utf16BE, utf32LE and utf32BE spell s in those encodings,
// without a byte order mark.
func utf16LE(s string) string { return encode(s, 2, binary.LittleEndian) }
func utf16BE(s string) string { return encode(s, 2, binary.BigEndian) }
func utf32LE(s string) string { return encode(s, 4, binary.LittleEndian) }
func utf32BE(s string) string { return encode(s, 4, binary.BigEndian) }

func encode(s string, width int, order binary.AppendByteOrder) string {
	var b []byte
	for _, r := range s {
		if width == 4 {
			b = order.AppendUint32(b, uint32(r))
			continue
		}
		for _, u := range utf16.Encode([]rune{r}) {
			b = order.AppendUint16(b, u)
		}
	}
	return string(b)
}

// TestSameJSONEverywhere: a body a backend may read as JSON passes only
// as I-JSON; each refusal names its fault and where, never the body.
func TestSameJSONEverywhere(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		typed      bool
		want       string // "" passes
	}{
		{"a plain object", `{"name":"Ada","tags":[{"a":1},{"a":2}]}`, true, ""},
		{"an escaped pair", `{"name":"A\ud83d\ude00"}`, true, ""},
		{"a number past float64", `{"n":1e400}`, true, ""},
		{"no body", ``, true, ""},
		{"a form", `name=Ada&name=Eve`, false, ""},
		{"text that is not JSON", `{hello`, false, ""},
		{"a name twice, then text", `{"name":"Ada","name":"Eve"} and more`, false, "a member twice in one object (at byte 14)"},
		{"NDJSON, a name twice on its second line", "{\"id\":1}\n{\"name\":\"Ada\",\"name\":\"Eve\"}\n", false, "a member twice in one object (at byte 23)"},
		{"NDJSON, a lone surrogate", "{\"id\":1}\n{\"name\":\"\\ud800\"}\n", false, "not Unicode (at byte 18"},
		{"NDJSON, a number, then a name twice", "1\n{\"name\":\"Ada\",\"name\":\"Eve\"}\n", false, "a member twice in one object (at byte 16)"},
		{"NDJSON", "{\"id\":1,\"name\":\"Ada\"}\n{\"id\":2,\"name\":\"Eve\"}\n", false, ""},
		{"JSON, then text", `[1] is a list`, false, ""},
		{"Latin-1 text from a quote", "\"Caf\xe9\" is French for coffee", false, ""},
		{"a name twice", `{"name":"Ada","name":"Eve"}`, true, "a member twice in one object (at byte 14)"},
		{"a name twice, one escaped", `{"name":"Ada","\u006eame":"Eve"}`, true, "a member twice"},
		{"a name twice, nested", `{"p":{"id":1,"id":2}}`, true, "a member twice in one object (at byte 13)"},
		{"a name twice, typed as text", `{"name":"Ada","name":"Eve"}`, false, "a member twice"},
		{"a lone surrogate", `{"name":"A\ud800"}`, true, "not Unicode (at byte 10"},
		{"a low surrogate first", `{"name":"\udc00\ud800"}`, true, "not Unicode"},
		{"bytes not UTF-8", "{\"name\":\"A\xff\"}", true, "not Unicode (at byte 10"},
		{"bytes not UTF-8, typed as text", "{\"name\":\"A\xc0\xaf\"}", false, "not Unicode"},
		{"a byte order mark", "\ufeff{}", true, "behind a byte order mark"},
		{"a byte order mark, typed as text", "\ufeff{\"name\":\"Ada\"}", false, "behind a byte order mark"},
		{"UTF-16, typed as text", utf16LE(`{"name":"Ada"}`), false, "in UTF-16"},
		{"UTF-16 behind its byte order mark", "\xff\xfe" + utf16LE(`{"name":"Ada"}`), false, "in UTF-16"},
		{"UTF-16 big-endian", utf16BE(`["Ada"]`), false, "in UTF-16"},
		{"UTF-16 big-endian behind its byte order mark", "\xfe\xff" + utf16BE(`["Ada"]`), false, "in UTF-16"},
		{"UTF-16, one digit", utf16LE("7"), true, "in UTF-16"},
		{"UTF-32 behind its byte order mark", "\xff\xfe\x00\x00" + utf32LE(`{"name":"Ada"}`), false, "in UTF-16 or UTF-32"},
		{"UTF-32 big-endian", utf32BE(`{"name":"Ada"}`), false, "in UTF-16 or UTF-32"},
		{"UTF-32, typed JSON", utf32LE(`{"name":"Ada"}`), true, "in UTF-16 or UTF-32"},
		{"UTF-32 big-endian behind its byte order mark", "\x00\x00\xfe\xff" + utf32BE(`{}`), false, "in UTF-16 or UTF-32"},
		{"text behind a byte order mark", "\ufeffhello", false, ""},
		{"UTF-16 text", "\xff\xfe" + utf16LE("hello"), false, ""},
		{"binary from a zero byte", "\x00\x01\x02\x03{}", false, ""},
		{"two values", `{"a":1} {"a":2}`, true, "nested at most 10,000 deep (at byte 7)"},
		{"cut short after a name twice", `{"a":1,"a":2`, true, "nested at most 10,000 deep (at byte 12)"},
		{"cut short", `{"a":1`, true, "does not parse"},
		{"nested past 10,000", strings.Repeat("[", 10001) + strings.Repeat("]", 10001), true, "nested at most 10,000 deep (at byte 10000)"},
		{"nested 10,000 deep", strings.Repeat("[", 10000) + strings.Repeat("]", 10000), true, ""},
		{"U+0000", `{"name":"Ada\u0000"}`, true, "U+0000 (\\u0000, at byte 12)"},
		{"U+0000 in a name", `{"\u0000":1}`, false, "U+0000"},
		{"U+0000 on an NDJSON line", "{\"id\":1}\n[\"\\u0000\"]\n", false, "U+0000 (\\u0000, at byte 11)"},
		{"an escaped backslash, then u0000", `{"path":"C:\\u0000"}`, true, ""},
		{"an escaped backslash and U+0000", `{"path":"C:\\\u0000"}`, true, "U+0000"},
		{"an escaped backslash, then u0000, then U+0000", `{"path":"C:\\u0000","name":"\u0000"}`, true, "U+0000 (\\u0000, at byte 28)"},
		{"the text u0000 twice, then U+0000", `{"id":"u0000u0000\u0000"}`, true, "U+0000 (\\u0000, at byte 17)"},
		{"U+0001", `{"name":"Ada\u0001"}`, true, ""},
		{"a name twice, then a lone surrogate", `{"a":1,"a":"\ud800"}`, true, "not Unicode (at byte 12"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			types := []string{"text/plain"}
			if tc.typed {
				types = []string{"application/json"}
			}
			err := SameJSONEverywhere([]byte(tc.body), types)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "":
			case err == nil || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("got %v, want a refusal saying %q", err, tc.want)
			case strings.Contains(err.Error(), "Ada") || strings.Contains(err.Error(), "name"+`"`):
				t.Errorf("the refusal quotes the body: %v", err)
			}
		})
	}
}

// TestTypedJSONInACharsetOtherThanUTF8IsRefused: typed JSON passes only
// where every backend reads it as UTF-8, whatever charset its type names
// (Spring decodes it in that charset, Go ignores it); a form's type or an
// ASCII body in a charset that keeps ASCII passes.
func TestTypedJSONInACharsetOtherThanUTF8IsRefused(t *testing.T) {
	const accented = `{"name":"é"}`
	for _, tc := range []struct {
		name, body string
		types      []string
		refused    bool
	}{
		{"UTF-8 named", accented, []string{"application/json; charset=UTF-8"}, false},
		{"UTF-8 quoted", accented, []string{`application/json; charset="utf-8"`}, false},
		{"UTF-8 named utf8", accented, []string{"application/json; charset=utf8"}, false},
		{"Latin-1 named in capitals", accented, []string{"application/json; Charset=ISO-8859-1"}, true},
		{"the euro sign in windows-1252", "{\"price\":\"5\x80\"}", []string{"application/json; charset=windows-1252"}, true},
		{"no charset", accented, []string{"application/json"}, false},
		{"Latin-1 and ASCII", `{"name":"Ada"}`, []string{"application/json; charset=ISO-8859-1"}, false},
		{"text in Latin-1", accented, []string{"text/plain; charset=latin1"}, false},
		{"Latin-1 and not ASCII", accented, []string{"application/json; charset=ISO-8859-1"}, true},
		{"windows-1252 on a +json type", accented, []string{"application/merge-patch+json; charset=windows-1252"}, true},
		{"UTF-16 named, UTF-8 sent", `{"name":"Ada"}`, []string{"application/json; charset=utf-16"}, true},
		{"EBCDIC", `{"name":"Ada"}`, []string{"application/json; charset=IBM037"}, true},
		{"two charsets", `{"name":"Ada"}`, []string{"application/json; charset=utf-8; charset=utf-16"}, true},
		{"one of two types", accented, []string{"text/plain", "application/json; charset=latin1"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := SameJSONEverywhere([]byte(tc.body), tc.types)
			var r *Refusal
			switch {
			case !tc.refused && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.refused && (!errors.As(err, &r) || r.Status != http.StatusUnsupportedMediaType || !strings.Contains(r.Msg, "charset other than UTF-8")):
				t.Fatalf("got %v, want a 415 naming the charset", err)
			}
		})
	}
}

// TestAMultipartPartTypedJSONIsChecked: a part typed JSON is held to the
// rule of a JSON body, and its refusal says it was a part, whatever the
// case of the multipart type; a part of another type (a file, a field)
// passes as it is.
func TestAMultipartPartTypedJSONIsChecked(t *testing.T) {
	const ct = "multipart/form-data; boundary=XyZ"
	body := func(partType, content string) []byte {
		return []byte("--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n" +
			"--XyZ\r\nContent-Disposition: form-data; name=\"meta\"\r\n" + partType + "\r\n" + content + "\r\n--XyZ--\r\n")
	}
	for _, tc := range []struct {
		name, partType, content, want string
	}{
		{"a name twice", "Content-Type: application/json\r\n", `{"name":"Ada","name":"Eve"}`, "a part of the multipart body: the JSON body names a member twice in one object (at byte 14)"},
		{"a lone surrogate", "Content-Type: application/merge-patch+json\r\n", `{"name":"\ud800"}`, "a part of the multipart body: the JSON body holds a string that is not Unicode"},
		{"a charset other than UTF-8", "Content-Type: application/json; charset=latin1\r\n", `{"name":"é"}`, "a part of the multipart body: the JSON body's Content-Type names a charset"},
		{"well-formed", "Content-Type: application/json\r\n", `{"name":"Ada"}`, ""},
		{"a file that is JSON", "Content-Type: application/octet-stream\r\n", `{"name":"Ada","name":"Eve"}`, ""},
		{"a field that is JSON", "", `{"name":"Ada","name":"Eve"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := SameJSONEverywhere(body(tc.partType, tc.content), []string{ct})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want == "":
			case err == nil || !strings.HasPrefix(err.Error(), tc.want):
				t.Fatalf("got %v, want a refusal starting %q", err, tc.want)
			}
		})
	}
	// A media type's name is case-insensitive (RFC 9110 section 8.3.1):
	// backends read Multipart/Form-Data as multipart too.
	t.Run("a multipart type in capitals", func(t *testing.T) {
		err := SameJSONEverywhere(body("Content-Type: application/json\r\n", `{"name":"Ada","name":"Eve"}`), []string{"Multipart/Form-Data; boundary=XyZ"})
		if err == nil || !strings.HasPrefix(err.Error(), "a part of the multipart body") {
			t.Fatalf("got %v, want the part refused", err)
		}
	})
}
