package config_test

import (
	"strings"
	"testing"

	"strangler/config/configfile"
)

func TestMaxConnectionsIsReadAndANegativeOneRefused(t *testing.T) {
	c, err := configfile.Parse("c.yaml", []byte(hostileBackends+"max_connections: 5000\n"), testEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxConnections != 5000 {
		t.Errorf("got max_connections %d, want 5000", c.MaxConnections)
	}
	errs := parseErrors(t, hostileBackends+"max_connections: -1\n")
	if len(errs) != 1 || errs[0].File != "c.yaml" || errs[0].Line != 4 || errs[0].Field != "max_connections" || !strings.Contains(errs[0].Msg, "must not be negative") {
		t.Errorf("got %v, want one error at c.yaml line 4 on max_connections saying it must not be negative", errs)
	}
	if errs := parseErrors(t, hostileBackends+"max_connections: many\n"); len(errs) != 1 || errs[0].Field != "max_connections" {
		t.Errorf("got %v, want one error on max_connections", errs)
	}
}
