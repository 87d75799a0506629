package backfill

import "testing"

func TestZoneGivenTellsAZoneFromAMAndPM(t *testing.T) {
	for v, want := range map[string]bool{
		"2024-03-10 10:00:00+05:30": true, "2024-03-10T10:00:00Z": true, "2024-03-10 10:00:00.25-08": true,
		"2024-03-10 10:00:00 America/New_York": true, "10:00 EST": true, "10:00:00+0530": true,
		"2024-03-10 10:00:00": false, "2024-03-10 10:00:00.250000": false, "10:00 PM": false, "10:00:00 am": false,
		"2024-03-10": false, "10:00:00": false,
	} {
		if got := givesZone([]byte(v)); got != want {
			t.Errorf("%q: zone given %v, want %v", v, got, want)
		}
	}
}
