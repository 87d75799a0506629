package router

import (
	"net/http"
	"testing"
	"time"

	"strangler/force"
)

// TestAForceValueExpiresOnTheStoresClockOnEveryReplica: the admin API
// stamps a force value's expiry on the state store's clock; one replica's
// clock is ten minutes ahead of it, another's ten minutes behind. A
// 1-minute value issued a moment ago works on the one ahead (which read
// it as expired nine minutes ago), and one that expired a minute ago
// works on neither (the one behind took it for nine more minutes).
func TestAForceValueExpiresOnTheStoresClockOnEveryReplica(t *testing.T) {
	legacy := newBackend(t, answer(200, `"legacy"`))
	modern := newBackend(t, answer(200, `"modern"`))
	const routes = `
  - {name: get-patient, match: "GET /patients/{id}", mode: legacy}
`
	replica := func(off time.Duration) *facade {
		return newForceFacade(t, legacy.URL, modern.URL, routes, func(d *Deps) {
			d.Now = func() time.Time { return time.Now().Add(off) }
			d.StoreLead = func() time.Duration { return -off }
		})
	}
	key := force.NewKey(forceSecret)
	value := func(expires time.Time) string {
		return key.Sign(force.Claim{Route: "get-patient", Backend: "modern", Expires: expires, ID: "t"})
	}
	fresh, stale := value(time.Now().Add(time.Minute)), value(time.Now().Add(-time.Minute))
	for name, f := range map[string]*facade{"10 minutes ahead": replica(10 * time.Minute), "10 minutes behind": replica(-10 * time.Minute)} {
		served := func(v string) string {
			t.Helper()
			req, _ := http.NewRequest("GET", f.URL+"/patients/42", nil)
			req.Header.Set(force.Header, v)
			_, body := f.do(t, req)
			return body
		}
		if got := served(fresh); got != `"modern"` {
			t.Errorf("the replica %s: a value valid one more minute sent the request to %s, want modern", name, got)
		}
		if got := served(stale); got != `"legacy"` {
			t.Errorf("the replica %s: a value expired a minute ago sent the request to %s, want legacy", name, got)
		}
	}
}
