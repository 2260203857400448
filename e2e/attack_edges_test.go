package e2e_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/internal/apptest"
)

// aeUA is a real browser's user agent, as long as the host's logs carry.
const aeUA = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"

// TestAttackEdgesEraseUserWhoseLoginsWereAllDenied: a user stepup only
// ever denied (a blocked network) has no profile and no history, but his
// evaluated logins are kept for a verdict. Erasing him must remove them,
// not answer user_not_found and keep them (a legit verdict would then
// teach the "erased" user's history).
func TestAttackEdgesEraseUserWhoseLoginsWereAllDenied(t *testing.T) {
	s := csNewSite(t, apptest.Options{Redis: apptest.Single})
	s.Must(t, 200, "PUT", "/v1/admin/policy", s.ManagerKey, map[string]any{"blocked_networks": []string{"198.51.100.0/24"}})
	ev := s.Must(t, 200, "POST", "/v1/logins/evaluate", s.AppKey, map[string]any{
		"user_id": "ghost", "ip": "198.51.100.7", "user_agent": aeUA, "device_id": "ghost-laptop"})
	if ev["decision"] != "deny" {
		t.Fatalf("login from a blocked network: %v, want deny", ev)
	}
	id := ev["login_id"].(string)

	s.Must(t, 204, "DELETE", "/v1/users/ghost", s.AppKey, nil)
	s.Must(t, 404, "POST", "/v1/logins/"+id+"/feedback", s.AppKey, map[string]any{"verdict": "legit"})
	s.Must(t, 404, "GET", "/v1/users/ghost", s.AppKey, nil)
}

// TestAttackEdgesImportThousandLogins: SPEC.md section 5 promises an import
// of up to 1,000 past logins; with a real browser's user agent and a device
// id that body is far above the API's general 64 KiB limit.
func TestAttackEdgesImportThousandLogins(t *testing.T) {
	s := csNewSite(t, apptest.Options{Redis: apptest.Single})
	logins := make([]map[string]any, 1000)
	start := time.Now().Add(-90 * 24 * time.Hour)
	for i := range logins {
		logins[i] = map[string]any{"ip": fmt.Sprintf("203.0.113.%d", i%200+1), "user_agent": aeUA,
			"device_id": fmt.Sprintf("host-cookie-%08d-%08d", i%3, i), "at": start.Add(time.Duration(i) * time.Hour).UTC().Format(time.RFC3339)}
	}
	res := s.Must(t, 201, "POST", "/v1/users/imp/history", s.AppKey, map[string]any{"logins": logins})
	if res["imported"] != float64(1000) {
		t.Fatalf("imported %v, want 1000", res["imported"])
	}
	// One more than the contract's bound is still refused by count.
	over := append(logins, logins[0])
	r := s.Do(t, "POST", "/v1/users/imp2/history", s.AppKey, map[string]any{"logins": over})
	if r.Status != 400 {
		t.Fatalf("import of 1,001 logins: status %d, want 400: %s", r.Status, r.Raw)
	}
}

// TestAttackEdgesConcurrentImports: an import is only for a user without
// history, at most 1,000 logins. Imports sent at once must not each see
// "no history yet" and together teach several thousand logins.
func TestAttackEdgesConcurrentImports(t *testing.T) {
	s := csNewSite(t, apptest.Options{Redis: apptest.Single})
	logins := make([]map[string]any, 1000)
	start := time.Now().Add(-90 * 24 * time.Hour)
	for i := range logins {
		logins[i] = map[string]any{"ip": fmt.Sprintf("203.0.113.%d", i%200+1), "user_agent": aeUA,
			"device_id": "host-cookie", "at": start.Add(time.Duration(i) * time.Hour).UTC().Format(time.RFC3339)}
	}
	const n = 4
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- s.Do(t, "POST", "/v1/users/race/history", s.AppKey, map[string]any{"logins": logins}).Status
		}()
	}
	wg.Wait()
	close(statuses)
	created := 0
	for st := range statuses {
		switch st {
		case 201:
			created++
		case 409:
		default:
			t.Fatalf("concurrent import: status %d", st)
		}
	}
	if created != 1 {
		t.Fatalf("%d of %d concurrent imports were learnt, want 1", created, n)
	}
}
