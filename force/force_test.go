package force

import (
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestValuesVerifyOnlyUnderTheirKeyAndUntilTheyExpire(t *testing.T) {
	var secret, other [32]byte
	secret[0], other[0] = 1, 2
	k := NewKey(secret)
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	claim := Claim{Route: "get-patient", Backend: "modern", Expires: now.Add(time.Hour), ID: "0123456789abcdef"}
	value := k.Sign(claim)

	t.Run("a genuine value verifies to its claim", func(t *testing.T) {
		got, err := k.Verify(value, now.Add(59*time.Minute))
		if err != nil || got != claim {
			t.Errorf("got %+v, %v; want %+v", got, err, claim)
		}
	})
	t.Run("it expires at its time, not a second later", func(t *testing.T) {
		if _, err := k.Verify(value, now.Add(time.Hour)); !errors.Is(err, ErrExpired) {
			t.Errorf("got %v, want ErrExpired", err)
		}
	})

	// forge rewrites the claim inside a genuine value, keeping the signature.
	forge := func(route, backend string, expires int64) string {
		payload := route + "\n" + backend + "\n" + strconv.FormatInt(expires, 10) + "\n0123456789abcdef"
		parts := strings.Split(value, ".")
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + parts[2]
	}
	for _, tc := range []struct {
		name, value string
		want        error
	}{
		{"another key's value", NewKey(other).Sign(claim), ErrForged},
		{"a value moved to another route", forge("delete-patient", "modern", claim.Expires.Unix()), ErrForged},
		{"a value sent to the other backend", forge("get-patient", "legacy", claim.Expires.Unix()), ErrForged},
		{"a value made to last longer", forge("get-patient", "modern", claim.Expires.Unix()+86400), ErrForged},
		{"a cut signature", value[:len(value)-2], ErrMalformed},
		{"another version", "v2" + value[2:], ErrMalformed},
		{"no dots", "modern", ErrMalformed},
		{"not base64", "v1.!!!.???", ErrMalformed},
		{"empty", "", ErrMalformed},
		{"a huge header", "v1." + strings.Repeat("A", 4096) + "." + strings.Split(value, ".")[2], ErrMalformed},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			if _, err := k.Verify(tc.value, now); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzVerifyNeverPanics(f *testing.F) {
	var secret [32]byte
	k := NewKey(secret)
	f.Add(k.Sign(Claim{Route: "r", Backend: "modern", Expires: time.Unix(1e9, 0), ID: "x"}))
	f.Add("v1..")
	f.Fuzz(func(t *testing.T, v string) {
		c, err := k.Verify(v, time.Unix(0, 0))
		if err == nil && k.Sign(c) != v {
			t.Errorf("%q verified but is not what Sign makes of its claim %+v", v, c)
		}
	})
}
