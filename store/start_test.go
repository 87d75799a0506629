package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"strangler/internal/testdb"
)

func TestStartWaitsForAnUnreachableServer(t *testing.T) {
	proxy, dsn := testdb.NewProxy(t, testdb.Postgres(t))
	proxy.Cut()
	ctx := context.Background()
	s, err := Start(ctx, dsn, nil)
	if err != nil {
		t.Fatalf("Start with the server unreachable: %v, want a store that waits", err)
	}
	defer s.Close()
	if err := s.Healthy(ctx); err == nil {
		t.Fatal("a store whose server is unreachable reports healthy")
	}
	if _, err := s.Overrides(ctx); err == nil {
		t.Fatal("a call succeeded before the server was reachable")
	}
	if s.Hasher().Ready() {
		t.Fatal("the store's hasher has a key before the store was reached")
	}
	proxy.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for s.Healthy(ctx) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the store never became healthy after the server came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := s.Overrides(ctx); err != nil {
		t.Errorf("after the server came back: %v", err)
	}
	if !s.Hasher().Ready() {
		t.Error("after the server came back the store's hasher has no key: samples cannot be kept")
	}
}

func TestStartRefusesABadAddressAtOnce(t *testing.T) {
	if _, err := Start(context.Background(), "mysql://nope", nil); err == nil {
		t.Error("an unsupported store was accepted")
	}
}

// TestOpenHidesThePasswordOfABadAddress gives Open a PostgreSQL URL whose
// unescaped password breaks it: pgx's parse error quotes pieces of it.
func TestOpenHidesThePasswordOfABadAddress(t *testing.T) {
	const dsn = "postgres://app:Sup3rS3cret&rest/x@db:5432/strangler?password=Sup3rS3cret&rest/x"
	_, err := Open(context.Background(), dsn, nil)
	if err == nil {
		t.Fatal("a malformed address was accepted")
	}
	for _, piece := range []string{"Sup3r", "S3cret", "rest/x"} {
		if strings.Contains(err.Error(), piece) {
			t.Errorf("the error shows %q of the password: %v", piece, err)
		}
	}
}
