package backfill

import (
	"bytes"
	"testing"
)

func TestCopyTextEscapesWhatDelimitsRowsAndColumns(t *testing.T) {
	for _, tc := range []struct {
		in     []byte
		binary bool
		want   string
	}{
		{nil, false, `\N`},
		{[]byte{}, false, ``},
		{[]byte("plain"), false, `plain`},
		{[]byte("a\tb\nc\rd\\e"), false, `a\tb\nc\rd\\e`},
		{[]byte(`\N`), false, `\\N`},
		{[]byte{0xca, 0xfe}, true, `\\xcafe`},
	} {
		var b bytes.Buffer
		appendCopyText(&b, tc.in, tc.binary)
		if b.String() != tc.want {
			t.Errorf("appendCopyText(%q) = %q, want %q", tc.in, b.String(), tc.want)
		}
	}
}
