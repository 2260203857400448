package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/config"
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

// TestAttackEdgesTwilioReportsOutOfOrder: Twilio's status callbacks may
// arrive out of order and a replayed or late one is still signed. A late
// "sent" must not undo "delivered", and a report on a message the
// challenge has since replaced (a resend) must not describe the new one.
func TestAttackEdgesTwilioReportsOutOfOrder(t *testing.T) {
	s := csNewSite(t, apptest.Options{Redis: apptest.Single, Configure: func(c *config.Config) { c.Codes.ResendCooldown = time.Millisecond }})
	num := csPhone(190)
	s.Must(t, 200, "PUT", "/v1/users/ivy", s.AppKey, map[string]any{"email": "ivy@example.test"})
	id := csStr(csObj(s.Must(t, 201, "POST", "/v1/users/ivy/sms", s.AppKey, map[string]any{"phone": num}), "challenge"), "id")
	first := csWaitSMS(t, s.Twilio, num, 1)
	s.waitChallenge(t, id, "delivery_status sent", func(c map[string]any) bool { return c["delivery_status"] == "sent" })
	callback := strings.TrimRight(s.App.Config.PublicURL, "/") + "/v1/webhooks/twilio/status"
	token := s.Twilio.AuthToken()
	post := func(sid, status, code string) {
		t.Helper()
		v := url.Values{"MessageSid": {sid}, "AccountSid": {s.Twilio.AccountSID()}, "To": {num}, "MessageStatus": {status}}
		if code != "" {
			v.Set("ErrorCode", code)
		}
		if r := csPostForm(t, s.URL, v, csTwilioSignature(token, callback, v)); r.status != 204 {
			t.Fatalf("signed %s report: %d %s", status, r.status, r.raw)
		}
	}
	status := func() string {
		return csStr(s.Must(t, 200, "GET", "/v1/challenges/"+id, s.AppKey, nil), "delivery_status")
	}

	post(first.SID, "delivered", "")
	post(first.SID, "sent", "") // late
	if got := status(); got != "delivered" {
		t.Errorf("after delivered then a late sent: %q, want delivered", got)
	}

	// The code is sent again; the first message's late failure report
	// says nothing about the second.
	time.Sleep(5 * time.Millisecond)
	s.Must(t, 202, "POST", "/v1/challenges/"+id+"/resend", s.AppKey, nil)
	second := csWaitSMS(t, s.Twilio, num, 2)
	s.waitChallenge(t, id, "delivery_status sent", func(c map[string]any) bool { return c["delivery_status"] == "sent" })
	post(first.SID, "undelivered", "30003")
	if got := status(); got != "sent" {
		t.Errorf("after the replaced message's failure report: %q, want sent", got)
	}
	post(second.SID, "delivered", "")
	if got := status(); got != "delivered" {
		t.Errorf("after the current message's delivered report: %q, want delivered", got)
	}
}

// TestAttackEdgesOddIDsNever500: login and challenge ids are the client's
// text; none may crash a handler or reach another key.
func TestAttackEdgesOddIDsNever500(t *testing.T) {
	s := csNewSite(t, apptest.Options{Redis: apptest.Single})
	ids := []string{"lg_", "x", "lg_" + strings.Repeat("a", 3000), "lg_%7Bg%7D:tenants", "lg_..%2F..", "lg_%00", "lg_%C3%A9", "ch_", "lg_zz_zz", "lg_-1_x", "lg_99999999999999999999_x"}
	for _, id := range ids {
		for _, c := range []struct{ method, path string }{
			{"POST", "/v1/logins/" + id + "/feedback"},
			{"GET", "/v1/challenges/" + id},
			{"POST", "/v1/challenges/" + id + "/verify"},
			{"POST", "/v1/challenges/" + id + "/resend"},
		} {
			r := s.Do(t, c.method, c.path, s.AppKey, map[string]any{"verdict": "legit", "code": "123456"})
			if r.Status >= 500 {
				t.Errorf("%s %s: %d %s", c.method, c.path, r.Status, r.Raw)
			}
		}
	}
}

// TestAttackEdgesTwilioCustomStatusCallbackURL: with
// sms.twilio.status_callback_url set (Twilio posts to a gateway that
// forwards to stepupd), Twilio signs that URL; stepupd must check the
// signature against it, not against public_url, or every report is
// refused. A report signed for public_url's path is then refused.
func TestAttackEdgesTwilioCustomStatusCallbackURL(t *testing.T) {
	const hook = "https://hooks.example.test/twilio/stepup-status?src=twilio"
	s := csNewSite(t, apptest.Options{Redis: apptest.Single, Configure: func(c *config.Config) { c.SMS.Twilio.StatusCallbackURL = hook }})
	num := csPhone(191)
	s.Must(t, 200, "PUT", "/v1/users/kit", s.AppKey, map[string]any{"email": "kit@example.test"})
	id := csStr(csObj(s.Must(t, 201, "POST", "/v1/users/kit/sms", s.AppKey, map[string]any{"phone": num}), "challenge"), "id")
	msg := csWaitSMS(t, s.Twilio, num, 1)
	if msg.StatusCallback != hook {
		t.Fatalf("StatusCallback %q, want %q", msg.StatusCallback, hook)
	}
	s.waitChallenge(t, id, "delivery_status sent", func(c map[string]any) bool { return c["delivery_status"] == "sent" })
	token := s.Twilio.AuthToken()
	v := url.Values{"MessageSid": {msg.SID}, "AccountSid": {s.Twilio.AccountSID()}, "To": {num}, "MessageStatus": {"delivered"}}

	other := strings.TrimRight(s.App.Config.PublicURL, "/") + "/v1/webhooks/twilio/status"
	if r := csPostForm(t, s.URL, v, csTwilioSignature(token, other, v)); r.status != 403 {
		t.Errorf("report signed for public_url's path: %d %s, want 403", r.status, r.raw)
	}
	if r := csPostForm(t, s.URL, v, csTwilioSignature(token, hook, v)); r.status != 204 {
		t.Fatalf("report signed for the configured callback URL: %d %s, want 204", r.status, r.raw)
	}
	if got := csStr(s.Must(t, 200, "GET", "/v1/challenges/"+id, s.AppKey, nil), "delivery_status"); got != "delivered" {
		t.Errorf("delivery_status %q, want delivered", got)
	}
}

// TestAttackEdgesErasureLeavesNoAlertNamingTheUser: a fraud verdict
// alerts the managers with a tenant-level event naming the user; after
// the user's erasure the audit log keeps only that an erasure happened.
func TestAttackEdgesErasureLeavesNoAlertNamingTheUser(t *testing.T) {
	s := csNewSite(t, apptest.Options{Redis: apptest.Single})
	s.Must(t, 200, "PUT", "/v1/admin/policy", s.ManagerKey, map[string]any{"manager_emails": []string{"sec@acme.example"}})
	const user = "zed-erasable-7"
	ev := s.Must(t, 200, "POST", "/v1/logins/evaluate", s.AppKey, map[string]any{
		"user_id": user, "ip": "192.0.2.50", "user_agent": aeUA, "device_id": "evil-1"})
	s.Must(t, 200, "POST", "/v1/logins/"+ev["login_id"].(string)+"/feedback", s.AppKey, map[string]any{"verdict": "fraud"})
	named := func() []string {
		var out []string
		evs := s.Must(t, 200, "GET", "/v1/admin/events?limit=1000", s.ManagerKey, nil)["events"].([]any)
		for _, e := range evs {
			m := e.(map[string]any)
			if b, _ := json.Marshal(m); strings.Contains(string(b), user) && m["type"] != "user_erased" {
				out = append(out, fmt.Sprint(m["type"]))
			}
		}
		return out
	}
	if got := named(); !slices.Contains(got, "alert_login_reported") {
		t.Fatalf("events naming the user before the erasure: %v, want an alert_login_reported among them", got)
	}
	s.Must(t, 204, "DELETE", "/v1/users/"+user, s.AppKey, nil)
	if got := named(); len(got) > 0 {
		t.Errorf("after the erasure the audit log still names the user in %v", got)
	}
}

// TestAttackEdgesEraseUserWithOnlyFailedPasswords: the host reported
// failed passwords of a user stepup never evaluated (credential stuffing
// of a real account); erasing him removes that window too rather than
// answering user_not_found.
func TestAttackEdgesEraseUserWithOnlyFailedPasswords(t *testing.T) {
	s := csNewSite(t, apptest.Options{Redis: apptest.Single})
	for range 3 {
		s.Must(t, 204, "POST", "/v1/logins/failed", s.AppKey, map[string]any{"user_id": "stuffed", "ip": "192.0.2.50", "user_agent": aeUA})
	}
	s.Must(t, 204, "DELETE", "/v1/users/stuffed", s.AppKey, nil)
	s.Must(t, 404, "DELETE", "/v1/users/stuffed", s.AppKey, nil)
}
