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

func TestTimeOfDayAndDateAreFoundInAnySpellingOfADate(t *testing.T) {
	for v, want := range map[string]bool{
		"2024-03-10 10:00": true, "2024-03-10T10:00": true, "03/10/2024 10:00 AM": true, "2024-03-10 1000": true,
		"20240310T1000": true, "J2460380.5": true, "Mar 10 2024 10:00pm": true, "2024-03-10 00:00:00+05:30": true,
		"2024-03-10 00:00:00.5": true, "2024-03-10 12:00 AM": true,
		"2024-03-10": false, "2024-03-10 00:00": false, "2024-03-10T00:00:00Z": false, "03/10/2024": false, "10.03.2024": false,
		"20240310": false, "J2460380": false, "Mar 10 2024": false, "2024-03-10 BC": false, "infinity": false,
	} {
		if got := timeOfDay([]byte(v)); got != want {
			t.Errorf("%q: time of day %v, want %v", v, got, want)
		}
	}
	for v, want := range map[string]bool{
		"2024-03-10 10:00:00": true, "03/10/2024 10:00 AM": true, "J2460380 10:00": true, "10.03.2024 10:00": true,
		"10:00": false, "10:00:00.123456": false, "-838:59:59": false, "10:00 PM": false, "1000": false, "allballs": false,
	} {
		if got := givesDate([]byte(v)); got != want {
			t.Errorf("%q: date given %v, want %v", v, got, want)
		}
	}
}
