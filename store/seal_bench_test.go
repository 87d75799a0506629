package store

import (
	"net/http"
	"testing"

	"strangler/phi"
)

// BenchmarkWhatAJournaledWriteCostsInCPU measures what store_encryption
// and resource hashing add to each dual write, outside the database: the
// hashing every write pays, and the sealing and opening an encrypted
// store adds.
func BenchmarkWhatAJournaledWriteCostsInCPU(b *testing.B) {
	keys, err := newKeyring([][32]byte{key(1)})
	if err != nil {
		b.Fatal(err)
	}
	s := &Store{keys: keys, hasher: phi.RandomHasher(), dialect: sqliteDialect()}
	in := canaryIntent("0b6e7a9c-1f1d-4f3e-9a57-3c1a2b4d5e6f")
	in.Header = http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"c530bd45-0000"}, "X-Forwarded-For": {"10.0.0.1"},
		"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	p := payload{target: in.Target, header: encodeHeader(in.Header), body: []byte(`{"first_name":"Patient","last_name":"Number7","born":"1970-01-01","city":"Oslo"}`)}
	b.Run("hash the resource", func(b *testing.B) {
		for b.Loop() {
			s.resourceKey(in.Resource)
			s.hasher.Path("/patients/{id}", in.Resource)
		}
	})
	b.Run("seal and open the payload", func(b *testing.B) {
		for b.Loop() {
			sealed, _ := s.seal(in.ID, p)
			if _, err := s.open(in.ID, sealed, true); err != nil {
				b.Fatal(err)
			}
		}
	})
}
