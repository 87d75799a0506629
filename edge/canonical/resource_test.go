package canonical

import (
	"testing"
	"unicode"
)

// TestResourceReadsAnIntegerIdAsBackendsDo: a segment that is a decimal
// integer is one resource however it is spelled, as Rails, Spring, Go's
// Atoi, PHP and the databases behind them read an integer id (found by
// the red team: PUT /items/07 and DELETE /items/7 were two resources, so
// the secondary could get them in the other order than the primary).
// What no integer reading makes the same stays apart.
func TestResourceReadsAnIntegerIdAsBackendsDo(t *testing.T) {
	for in, want := range map[string]string{
		"/items/7":                              "/items/7",
		"/items/07":                             "/items/7",
		"/items/0007/":                          "/items/7",
		"/items/0":                              "/items/0",
		"/items/000":                            "/items/0",
		"/items/10":                             "/items/10",
		"/items/100":                            "/items/100",
		"/items/%30%37":                         "/items/7", // decoded by Canonicalize first
		"/items/%EF%BC%90%EF%BC%97":             "/items/7", // ０７, fullwidth: Fold
		"/items/007.json":                       "/items/7",
		"/Items/007.":                           "/items/7",
		"/items/+7":                             "/items/7",
		"/items/%2B07":                          "/items/7",
		"/items/%EF%BC%8B7":                     "/items/7", // ＋7
		"/items/%207":                           "/items/7",
		"/items/%20%20+007":                     "/items/7",
		"/items/-7":                             "/items/-7",
		"/items/-007":                           "/items/-7",
		"/items/-0":                             "/items/0",
		"/items/%20-07":                         "/items/-7",
		"/orders/07/lines/03":                   "/orders/7/lines/3",
		"/0/01/1":                               "/0/1/1",
		"/items/98765432109876543210987654321":  "/items/98765432109876543210987654321",
		"/items/007123456789012345678901234567": "/items/7123456789012345678901234567",
		// Digits of other scripts, which Java's Long.parseLong (Spring)
		// reads as digits: Arabic-Indic ٠٧, Devanagari ७, and the last
		// of the runs of mathematical digits (which NFKC makes ASCII).
		"/items/%D9%A0%D9%A7": "/items/7",
		"/items/%E0%A5%AD":    "/items/7",
		"/items/1%E0%A5%A6":   "/items/10",
		"/items/%F0%9D%9F%BF": "/items/9",
		"/items/%F0%9D%9F%8E": "/items/0",
		// Not integers: kept as they are.
		"/items/%D9%AA":    "/items/%D9%AA", // ٪, the Arabic percent sign
		"/items/%C2%B2":    "/items/2",      // ², NFKC's 2 (Fold)
		"/items/%E2%85%A7": "/items/viii",   // Ⅷ, NFKC's VIII: no Nd digit
		"/items/+":         "/items/+",
		"/items/-":         "/items/-",
		"/items/%20":       "/items",
		"/items/+-7":       "/items/+-7",
		"/items/--7":       "/items/--7",
		"/items/7+":        "/items/7+",
		"/items/0x7":       "/items/0x7",
		"/items/07a":       "/items/07a",
		"/items/a07":       "/items/a07",
		"/items/0%207":     "/items/0%207",
		"/v007/items":      "/v007/items",
		"/items/%2D07":     "/items/-7", // %2D is -, unreserved
	} {
		p, err := Canonicalize(in)
		if err != nil {
			t.Errorf("Canonicalize(%q): %v", in, err)
			continue
		}
		if got := Resource(p.Escaped); got != want {
			t.Errorf("Resource(%q) = %q, want %q", p.Escaped, got, want)
		}
	}
	if got, ok := ResourceOf("/items/%2b007"); !ok || got != "/items/7" {
		t.Errorf("ResourceOf(/items/%%2b007) = %q, %v; want /items/7", got, ok)
	}
}

// TestAPlainPathsResourceCostsNoAllocation: the resource of a path that
// needs no folding is the path itself, as it was before integers were
// read (each dual write takes one).
func TestAPlainPathsResourceCostsNoAllocation(t *testing.T) {
	for _, p := range []string{"/items/7", "/items/-7", "/orders/70/lines/0", "/records/abc.json"} {
		if n := testing.AllocsPerRun(10, func() { Resource(p) }); n != 0 {
			t.Errorf("Resource(%q) allocates %v times, want none", p, n)
		}
	}
}

// TestEveryDecimalDigitHasItsValue: digitValue counts a digit's place in
// its run, which holds while Unicode's decimal digits come in whole runs
// of ten from 0 (its stability policy; Go's tables are checked here).
func TestEveryDecimalDigitHasItsValue(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if unicode.IsDigit(r) && !unicode.IsDigit(r+1) && digitValue(r) != 9 {
			t.Errorf("%U, the last of a run of decimal digits, has the value %d, want 9", r, digitValue(r))
		}
	}
	if got := digitValue('\u0667'); got != 7 {
		t.Errorf("٧ has the value %d, want 7", got)
	}
}
