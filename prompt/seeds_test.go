package prompt_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/stepup-auth/stepup/internal/pagetest"
)

var (
	seedSecretRe = regexp.MustCompile(`id="totp-secret">([A-Z2-7 ]+)<`)
	seedCodesRe  = regexp.MustCompile(`<li>([a-z0-9]{4}-[a-z0-9]{4})</li>`)
)

// seedPost posts a settings page's form (with its CSRF token) and returns
// the page the browser ends on.
func seedPost(t *testing.T, c *http.Client, page, action, csrf string, form url.Values) (int, string) {
	t.Helper()
	return pagetest.Page{Client: c, URL: page, CSRF: csrf}.Post(t, "/"+action, form)
}

// TestPromptSeedAuthenticatorReset: on the settings page, a user of an
// authenticator app only who lost the backup codes sets the app up again
// (the old app's code first, then a new key and the new app's code), gets
// new backup codes with the new app, and turns two-step verification off
// with it — each with the API's e-mail.
func TestPromptSeedAuthenticatorReset(t *testing.T) {
	s := newSite(t)
	const addr = "jo@example.test"
	s.Must(t, 200, "PUT", "/v1/users/jo", s.app, map[string]any{"email": addr})
	st := s.Must(t, 201, "POST", "/v1/users/jo/totp", s.app, nil)
	old := &pagetest.Authenticator{Secret: st["secret"].(string)}
	res := s.Must(t, 200, "POST", "/v1/challenges/"+st["challenge"].(map[string]any)["id"].(string)+"/verify", s.app,
		map[string]any{"code": old.Code(t)})
	lost := res["result"].(map[string]any)["backup_codes"].([]any)

	p := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": "jo", "action": "manage", "return_url": s.host.callback(), "state": "j1"})
	page := p["url"].(string)
	c, csrf := openPage(t, page)
	if st, body := seedPost(t, c, page, "verify", csrf, url.Values{"code": {old.Code(t)}}); st != 200 || !strings.Contains(body, "Set up a new authenticator app") {
		t.Fatalf("step-up with the app: %d %s", st, body)
	}

	// A new authenticator: the current app's code, then a new key.
	if st, body := seedPost(t, c, page, "totp", csrf, nil); st != 200 || strings.Contains(body, "totp-secret") {
		t.Fatalf("new authenticator, before the current app's code: %d %s", st, body)
	}
	st2, body := seedPost(t, c, page, "change/verify", csrf, url.Values{"code": {old.Code(t)}})
	m := seedSecretRe.FindStringSubmatch(body)
	if st2 != 200 || m == nil {
		t.Fatalf("new authenticator after the current app's code: %d %s", st2, body)
	}
	app := &pagetest.Authenticator{Secret: strings.ReplaceAll(m[1], " ", "")}
	if app.Secret == old.Secret {
		t.Fatal("the same key again")
	}
	if st, body := seedPost(t, c, page, "change/verify", csrf, url.Values{"code": {app.Code(t)}}); st != 200 || !strings.Contains(body, "Regenerate backup codes") {
		t.Fatalf("the new app's code: %d %s", st, body)
	}
	s.waitMail(t, addr, "authenticator app for two-factor authentication was reset")

	// New backup codes, with the new app; the old app is refused.
	if st, body := seedPost(t, c, page, "backup-codes", csrf, nil); st != 200 || !strings.Contains(body, "authenticator app") {
		t.Fatalf("new backup codes: %d %s", st, body)
	}
	oldNow, _ := totp.GenerateCode(old.Secret, time.Now())
	if st, _ := seedPost(t, c, page, "change/verify", csrf, url.Values{"code": {oldNow}}); st != 422 {
		t.Errorf("the old app's code for new backup codes: %d", st)
	}
	st2, body = seedPost(t, c, page, "change/verify", csrf, url.Values{"code": {app.Code(t)}})
	var fresh []string
	for _, m := range seedCodesRe.FindAllStringSubmatch(body, -1) {
		fresh = append(fresh, m[1])
	}
	if st2 != 200 || len(fresh) != 10 {
		t.Fatalf("new backup codes shown: %d %v %s", st2, fresh, body)
	}
	s.waitMail(t, addr, "New backup codes were created")
	ev := s.Must(t, 200, "POST", "/v1/logins/evaluate", s.app, map[string]any{"user_id": "jo", "ip": "203.0.113.9", "user_agent": ua})
	id := ev["challenge"].(map[string]any)["id"].(string)
	if r := s.Do(t, "POST", "/v1/challenges/"+id+"/verify", s.app, map[string]any{"code": lost[0]}); r.Status != 422 {
		t.Errorf("a lost backup code after new ones: %d %s", r.Status, r.Raw)
	}
	s.Must(t, 200, "POST", "/v1/challenges/"+id+"/verify", s.app, map[string]any{"code": fresh[0]})

	// Turned off with the new app's code.
	if st, _ := seedPost(t, c, page, "disable", csrf, nil); st != 200 {
		t.Fatalf("turn off: %d", st)
	}
	if st, body := seedPost(t, c, page, "change/verify", csrf, url.Values{"code": {app.Code(t)}}); st != 200 || !strings.Contains(body, "Two-step verification is off") {
		t.Fatalf("turn off with the app's code: %d %s", st, body)
	}
	if u := s.Must(t, 200, "GET", "/v1/users/jo", s.app, nil); u["enrolled"] != false {
		t.Errorf("after turning off: %v", u)
	}
	s.waitMail(t, addr, "Two-factor authentication was turned off")
}

// TestPromptSeedEnrolAppAtLogin: the organisation requires two-step
// verification and the user's grace logins are spent; the login's page
// shows a QR code and key, the app's code turns the factor on, the backup
// codes are shown once and Continue completes the login for the host app.
// The next login asks for the app's code.
func TestPromptSeedEnrolAppAtLogin(t *testing.T) {
	s := newSite(t)
	s.Must(t, 200, "PUT", "/v1/admin/policy", s.mgr, map[string]any{"mode": "required", "grace_logins": 1})
	s.Must(t, 200, "PUT", "/v1/users/vo", s.app, map[string]any{"email": "vo@example.test"})
	login := map[string]any{"user_id": "vo", "ip": "203.0.113.9", "user_agent": ua, "device_id": "laptop-1"}
	if ev := s.Must(t, 200, "POST", "/v1/logins/evaluate", s.app, login); ev["decision"] != "allow" {
		t.Fatalf("grace login: %v", ev)
	}
	ev := s.Must(t, 200, "POST", "/v1/logins/evaluate", s.app, login)
	if ev["decision"] != "enroll" {
		t.Fatalf("after the grace login: %v", ev)
	}
	p := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"login_id": ev["login_id"], "return_url": s.host.callback(), "state": "v1"})
	page := p["url"].(string)
	c, csrf := openPage(t, page)

	st, body := seedPost(t, c, page, "totp", csrf, nil)
	m := seedSecretRe.FindStringSubmatch(body)
	if st != 200 || m == nil || !strings.Contains(body, `src="data:image/png;base64,`) {
		t.Fatalf("set up an authenticator app: %d %s", st, body)
	}
	app := &pagetest.Authenticator{Secret: strings.ReplaceAll(m[1], " ", "")}
	st, body = seedPost(t, c, page, "change/verify", csrf, url.Values{"code": {app.Code(t)}})
	if n := len(seedCodesRe.FindAllStringSubmatch(body, -1)); st != 200 || n != 10 {
		t.Fatalf("the app's code: %d, %d backup codes: %s", st, n, body)
	}
	seedPost(t, c, page, "done", csrf, nil)
	q := s.host.wait(t, 1)
	if q.Get("state") != "v1" || q.Get("stepup_code") == "" {
		t.Fatalf("return: %v", q)
	}
	res := s.Must(t, 200, "POST", "/v1/prompts/exchange", s.app, map[string]any{"code": q.Get("stepup_code")})
	if res["user_id"] != "vo" || res["login_id"] != ev["login_id"] || res["verified"] != true || res["method"] != "totp" {
		t.Fatalf("exchange: %v", res)
	}
	s.waitMail(t, "vo@example.test", "An authenticator app was added")

	ev = s.Must(t, 200, "POST", "/v1/logins/evaluate", s.app, login)
	ch, _ := ev["challenge"].(map[string]any)
	if ev["decision"] != "challenge" || ch["channel"] != "totp" {
		t.Fatalf("next login: %v", ev)
	}
	s.Must(t, 200, "POST", "/v1/challenges/"+ch["id"].(string)+"/verify", s.app, map[string]any{"code": app.Code(t)})
}
