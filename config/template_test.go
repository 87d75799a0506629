package config_test

import (
	"slices"
	"testing"

	"strangler/config"
)

func TestTemplatesAreOpenAPIPaths(t *testing.T) {
	for _, tc := range []struct {
		pattern, want string
		params        []config.Param
	}{
		{"/patients/{id}", "/patients/{id}", []config.Param{{Name: "id"}}},
		{"/patients/{id:[0-9]{3}}/photos/{n}", "/patients/{id}/photos/{n}", []config.Param{{Name: "id", Regexp: "[0-9]{3}"}, {Name: "n"}}},
		{"/files/*", "/files/{path}", []config.Param{{Name: "path", Regexp: ".*"}}},
		{"/health", "/health", nil},
	} {
		got, params := config.Match{Path: tc.pattern}.Template()
		if got != tc.want || !slices.Equal(params, tc.params) {
			t.Errorf("%s: got %s %v, want %s %v", tc.pattern, got, params, tc.want, tc.params)
		}
	}
}
