package stats

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"strangler/domain"
)

var t0 = time.Date(2026, 11, 1, 12, 0, 30, 0, time.UTC)

func TestWindowCountsRecentMinutesOnly(t *testing.T) {
	c := NewCounters()
	r := c.Route("get")
	r.Modern(t0.Add(-10*time.Minute), true)
	r.Modern(t0.Add(-30*time.Second), true)
	r.Modern(t0, false)
	if got := r.Window(t0, time.Minute); got.ModernAttempts != 2 || got.ModernErrors != 1 {
		t.Errorf("last minute: got %+v, want 2 attempts, 1 error", got)
	}
	if got := r.Window(t0, 15*time.Minute); got.ModernAttempts != 3 || got.ModernErrorRate() != 2.0/3 {
		t.Errorf("last 15 minutes: got %+v", got)
	}
	// 50 minutes on, the bucket of -10m is reused: its error must not be
	// counted again, while the minute of t0 is still within the hour.
	r.Modern(t0.Add(50*time.Minute), false)
	if got := r.Window(t0.Add(50*time.Minute), time.Hour); got.ModernErrors != 1 || got.ModernAttempts != 3 {
		t.Errorf("50 minutes on: got %+v, want t0's 2 attempts (1 error) and the new one", got)
	}
}

type sink struct {
	counts  []domain.HourCount
	clients []domain.ClientCount
	fail    bool
}

func (s *sink) AddCounts(_ context.Context, c []domain.HourCount) error {
	if s.fail {
		return errors.New("store down")
	}
	s.counts = append(s.counts, c...)
	return nil
}

func (s *sink) AddLegacyClients(_ context.Context, c []domain.ClientCount) error {
	s.clients = append(s.clients, c...)
	return nil
}

func TestFlushKeepsCountsAStoreOutageCouldNotTake(t *testing.T) {
	c := NewCounters()
	r := c.Route("get")
	legacyReq := &http.Request{Header: http.Header{"User-Agent": {"PatientApp/5.2.1 (iPhone; iOS 17)"}}}
	r.Request(t0, "legacy", legacyReq)
	r.Request(t0, "modern", legacyReq)
	r.ModernAnswered(t0, true)
	r.Fallback(t0)
	r.Request(t0, "fallback", legacyReq)
	down := &sink{fail: true}
	if err := c.Flush(context.Background(), down, t0); err == nil {
		t.Fatal("a failing store reported success")
	}
	up := &sink{}
	if err := c.Flush(context.Background(), up, t0); err != nil {
		t.Fatal(err)
	}
	if len(up.counts) != 1 {
		t.Fatalf("got %d counts, want 1", len(up.counts))
	}
	got := up.counts[0]
	if got.Requests != 3 || got.Modern != 1 || got.Fallbacks != 1 || got.Legacy != 1 || got.ModernFailed != 1 || !got.LastFallbackAt.Equal(t0) {
		t.Errorf("after an outage the flush holds %+v", got)
	}
	if len(up.clients) != 1 || up.clients[0].Client != "PatientApp/5.2.1" || up.clients[0].Requests != 2 {
		t.Errorf("clients %+v, want PatientApp/5.2.1 twice: legacy reached itself and as a fallback", up.clients)
	}
	if err := c.Flush(context.Background(), up, t0); err != nil || len(up.counts) != 1 {
		t.Errorf("a second flush with nothing new added %d counts", len(up.counts)-1)
	}
}

// TestClientNamesAreBoundedPerHour: a client sending a new version on
// each request (1.0.1, 1.0.2, …), flushed every 10 seconds, has at most
// maxClients of them counted by name in an hour, the rest as other.
// Before, each flush took maxClients new names, and the store kept every
// one: 11,520 rows a route an hour, for 90 days.
func TestClientNamesAreBoundedPerHour(t *testing.T) {
	c := NewCounters()
	r := c.Route("get")
	s := &sink{}
	n := 0
	for flush := range 20 {
		now := t0.Add(time.Duration(flush) * 10 * time.Second)
		for range maxClients {
			n++
			r.Request(now, "legacy", &http.Request{Header: http.Header{"X-App-Version": {fmt.Sprintf("1.0.%d", n)}}})
		}
		c.Flush(context.Background(), s, now)
	}
	names := map[string]int64{}
	for _, cc := range s.clients {
		names[cc.Client] += cc.Requests
	}
	if len(names) != maxClients+1 || names["other"] != int64(n-maxClients) {
		t.Errorf("%d names in an hour (other: %d), want %d and other for the remaining %d", len(names), names["other"], maxClients, n-maxClients)
	}
	// The next hour counts new names again, and those the hour before
	// counted stay named.
	next := t0.Add(time.Hour)
	r.Request(next, "legacy", &http.Request{Header: http.Header{"X-App-Version": {"2.0.0"}}})
	r.Request(next, "legacy", &http.Request{Header: http.Header{"X-App-Version": {"1.0.1"}}})
	s = &sink{}
	c.Flush(context.Background(), s, next)
	if len(s.clients) != 2 || s.clients[0].Client == "other" || s.clients[1].Client == "other" {
		t.Errorf("the next hour counted %+v, want 2.0.0 and 1.0.1 by name", s.clients)
	}
}

func TestClientLabelsAreBounded(t *testing.T) {
	c := NewCounters()
	r := c.Route("get")
	for i := range maxClients + 10 {
		r.Request(t0, "legacy", &http.Request{Header: http.Header{"X-App-Version": {fmt.Sprintf("1.%d", i)}}})
	}
	r.Request(t0, "legacy", &http.Request{Header: http.Header{"X-App-Version": {"bad\x00value"}}})
	s := &sink{}
	c.Flush(context.Background(), s, t0)
	if len(s.clients) > maxClients+1 {
		t.Errorf("%d client labels, want at most %d and other", len(s.clients), maxClients)
	}
}

func BenchmarkRequest(b *testing.B) {
	r := NewCounters().Route("get")
	req := &http.Request{Header: http.Header{}}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		r.Request(now, "modern", req)
	}
}

func TestOnlyVersionShapedClientValuesAreCounted(t *testing.T) {
	for _, tc := range []struct {
		header, value, want string
	}{
		{"X-App-Version", "5.2.1", "5.2.1"},
		{"X-App-Version", "v1.0.3-beta.2", "v1.0.3-beta.2"},
		{"X-App-Version", "2024.05.1", "2024.05.1"},
		{"User-Agent", "PatientApp/5.2.1 (iOS 17; Jane Doe's iPhone)", "PatientApp/5.2.1"},
		{"User-Agent", "Mozilla/5.0 (X11; Linux x86_64)", "Mozilla/5.0"},
		{"X-App-Version", "MRN9988776", "other"},
		{"X-App-Version", "123-45-6789", "other"},
		{"X-App-Version", "1970-01-31", "other"},
		{"X-App-Version", "31.01.1970", "other"},
		{"X-App-Version", "1970.01.31", "other"},
		{"X-App-Version", "10.1.2.3", "other"},
		{"X-App-Version", "Jane Doe", "other"},
		{"X-App-Version", "app/MRN99.1", "other"},
		{"X-App-Version", "123-45-6789/1.0", "other"},
		{"User-Agent", "MRN9988776/5.2 (iOS 17)", "other"},
		{"X-App-Version", "1970-01-31/2.1", "other"},
		{"X-App-Version", "/5.2.1", "other"},
		{"User-Agent", "com.example.patients/5.2.1", "com.example.patients/5.2.1"},
		{"X-App-Version", "5.2.1\x00", "other"},
		{"X-App-Version", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", "other"},
		{"X-App-Version", strings.Repeat("1.", 17), "other"},
		{"User-Agent", "", "unknown"},
		// Free text after the dotted number (a person's name, a record
		// number) is not counted by name; a prerelease is numbers and a
		// few words, and build metadata is dropped.
		{"X-App-Version", "5.2.1-JohnSmith", "other"},
		{"X-App-Version", "5.2.1-beta.JaneDoe", "other"},
		{"X-App-Version", "5.2.1.JaneDoe", "other"},
		{"X-App-Version", "5.2.1_MRN99", "other"},
		{"X-App-Version", "5.2.1JohnSmith", "other"},
		{"User-Agent", "PatientApp/5.2.1-JohnSmith (iOS 17)", "other"},
		{"X-App-Version", "5.2.1-", "other"},
		{"X-App-Version", "5.2.1-rc..1", "other"},
		{"X-App-Version", "1.2.3.4.5", "other"},
		{"X-App-Version", "5.2.1-rc1", "5.2.1-rc1"},
		{"X-App-Version", "1.4.0-SNAPSHOT", "1.4.0-SNAPSHOT"},
		{"X-App-Version", "2.0.0-canary-3", "2.0.0-canary-3"},
		{"X-App-Version", "5.2.1.3456", "5.2.1.3456"},
		{"X-App-Version", "5.2.1+JohnSmith", "5.2.1"},
		{"User-Agent", "PatientApp/5.2.1+build.7 (iOS 17)", "PatientApp/5.2.1"},
		{"X-App-Version", "5.2.1+" + strings.Repeat("x", 100), "5.2.1"},
		// Nor does a number that identifies someone: a record number, a
		// date of birth, a social security or telephone number, whether
		// in the dotted number or in a prerelease of numbers.
		{"X-App-Version", "5.2.1-9988776", "other"},
		{"X-App-Version", "5.2.1.9988776", "other"},
		{"X-App-Version", "5.2.1-31.01.1970", "other"},
		{"X-App-Version", "5.2.1-rc.1970-01-31", "other"},
		{"X-App-Version", "123.45.6789", "other"},
		{"X-App-Version", "5.2.123-45-6789", "other"},
		{"X-App-Version", "5.555.123.4567", "other"},
		{"User-Agent", "PatientApp/5.2-555-123-4567 (iOS 17)", "other"},
		{"X-App-Version", "5.2.1-20241", "5.2.1-20241"},
		{"X-App-Version", "120.0.6099", "120.0.6099"},
		{"X-App-Version", "2024.12.1-rc.3", "2024.12.1-rc.3"},
	} {
		c := NewCounters()
		c.Route("get").Request(t0, "legacy", &http.Request{Header: http.Header{tc.header: {tc.value}}})
		s := &sink{}
		c.Flush(context.Background(), s, t0)
		if len(s.clients) != 1 || s.clients[0].Client != tc.want {
			t.Errorf("%s: %q counted as %+v, want %q", tc.header, tc.value, s.clients, tc.want)
		}
	}
}

// BenchmarkLegacyRequest is a request legacy served, its client version
// noted.
func BenchmarkLegacyRequest(b *testing.B) {
	r := NewCounters().Route("get")
	req := &http.Request{Header: http.Header{"User-Agent": {"PatientApp/5.2.1 (iOS 17)"}}}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		r.Request(now, "legacy", req)
	}
}
