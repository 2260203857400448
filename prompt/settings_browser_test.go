package prompt_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
	"github.com/stepup-auth/stepup/internal/pagetest"
)

// waitMail waits for a mail to to whose subject holds subject (the
// queue's worker sends it), as the same change through the API mails.
func (s site) waitMail(t *testing.T, to, subject string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range s.SMTP.Messages() {
			if slices.Contains(m.To, to) && strings.Contains(m.Subject, subject) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("no mail %q to %s", subject, to)
}

var mailCodeRe = regexp.MustCompile(`verification code is (\d{6})`)

// mailCode waits for a verification code mailed to to after the seen
// first mails and returns it.
func (s site) mailCode(t *testing.T, to string, seen int) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		msgs := s.SMTP.Messages()
		for i := len(msgs) - 1; i >= seen; i-- {
			if m := mailCodeRe.FindStringSubmatch(msgs[i].Text); m != nil && slices.Contains(msgs[i].To, to) {
				return m[1]
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no code mailed to %s within 10s", to)
	return ""
}

// backupCodes are the codes the page shows once.
func backupCodes(t *testing.T, ctx context.Context) []string {
	t.Helper()
	do(t, ctx, "backup codes", chromedp.WaitVisible(chromedp.Search(`//h3[normalize-space()="Your backup codes"]`)))
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.Search(`//h3[normalize-space()="Your backup codes"]/following-sibling::ul`)))
	if err != nil {
		t.Fatalf("backup codes: %v", err)
	}
	return strings.Fields(text)
}

// finish clicks Continue and exchanges the code the browser brings back.
func (s site) finish(t *testing.T, ctx context.Context, n int, state string) map[string]any {
	t.Helper()
	do(t, ctx, "continue", chromedp.Click(button("Continue")))
	q := s.host.wait(t, n)
	if q.Get("state") != state || q.Get("stepup_code") == "" {
		t.Fatalf("return: %v", q)
	}
	return s.Must(t, 200, "POST", "/v1/prompts/exchange", s.app, map[string]any{"code": q.Get("stepup_code")})
}

// TestPromptEnrolSMS completes an `enroll` login by text message: a
// refused number is explained next to its field, then the phone's code
// turns the factor on and the first backup codes are shown once.
func TestPromptEnrolSMS(t *testing.T) {
	s := newSite(t)
	loginID, u := s.enrolLogin(t, "dave", "e1")
	ctx := browser(t)

	do(t, ctx, "open", chromedp.Navigate(u), chromedp.WaitVisible(field("Phone number")))
	shot(t, ctx, "enrol-methods")
	do(t, ctx, "a number that cannot get texts", chromedp.SendKeys(field("Phone number"), "+44 7700 900123"),
		chromedp.Click(button("Send code")), chromedp.WaitVisible(chromedp.CSS("#phone-error")))
	if text := pageText(t, ctx); !strings.Contains(text, "not a valid phone number") || strings.Contains(text, "7700") {
		t.Errorf("after a bad number: %s", text)
	}
	a11y(t, ctx, "enrol: a refused number")
	seen := len(s.Twilio.Messages())
	do(t, ctx, "send code", chromedp.SendKeys(field("Phone number"), phone), chromedp.Click(button("Send code")),
		chromedp.WaitVisible(field("Code")))
	shot(t, ctx, "enrol-sms-code")
	code := s.SMSCode(t, phone, seen)
	do(t, ctx, "verify", chromedp.SendKeys(field("Code"), code), chromedp.Click(button("Verify")))
	if codes := backupCodes(t, ctx); len(codes) != 10 {
		t.Errorf("backup codes: %v", codes)
	}
	shot(t, ctx, "enrol-backup-codes")
	res := s.finish(t, ctx, 1, "e1")
	if res["user_id"] != "dave" || res["login_id"] != loginID || res["verified"] != true || res["method"] != "sms" {
		t.Fatalf("exchange: %v", res)
	}
	s.waitMail(t, "dave@example.test", "by text message was turned on")
	user := s.Must(t, 200, "GET", "/v1/users/dave", s.app, nil)
	if user["enrolled"] != true || user["backup_codes_left"] != 10.0 {
		t.Errorf("user after enrolment: %v", user)
	}
}

// TestPromptEnrolTOTP sets up an authenticator app from the key the page
// shows (and its QR code, which the CSP lets the page load).
func TestPromptEnrolTOTP(t *testing.T) {
	s := newSite(t)
	s.Must(t, 200, "PUT", "/v1/users/fay", s.app, map[string]any{"email": "fay@example.test"})
	// Nothing to manage yet: the settings prompt enrols.
	p := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": "fay", "action": "manage", "return_url": s.host.callback(), "state": "t1"})
	ctx := browser(t)

	do(t, ctx, "open", chromedp.Navigate(p["url"].(string)), chromedp.Click(button("Set up an authenticator app")),
		chromedp.WaitVisible(chromedp.CSS("#totp-secret")))
	secret, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#totp-secret")))
	if err != nil {
		t.Fatal(err)
	}
	secret = strings.ReplaceAll(secret, " ", "")
	width, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelector("img.qr").naturalWidth`))
	if err != nil || width < 100 {
		t.Errorf("QR code not shown: width %v, %v", width, err)
	}
	shot(t, ctx, "enrol-totp")
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatalf("the page's key: %v", err)
	}
	do(t, ctx, "verify", chromedp.SendKeys(field("Code"), code), chromedp.Click(button("Verify")))
	if codes := backupCodes(t, ctx); len(codes) != 10 {
		t.Errorf("backup codes: %v", codes)
	}
	res := s.finish(t, ctx, 1, "t1")
	if res["user_id"] != "fay" || res["method"] != "totp" {
		t.Fatalf("exchange: %v", res)
	}
	s.waitMail(t, "fay@example.test", "An authenticator app was added")
}

// TestPromptManageChanges regenerates the backup codes, changes the
// phone number (a code to the old number, then one to the new) and adds
// an authenticator app (after a step-up) on the settings page, each with
// the API's e-mail.
func TestPromptManageChanges(t *testing.T) {
	s := newSite(t)
	s.enrolSMS(t, "erin")
	const newPhone = "+61491570157"
	seen := len(s.Twilio.Messages())
	p := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": "erin", "action": "manage", "return_url": s.host.callback(), "state": "m2"})
	ctx := browser(t)
	do(t, ctx, "open", chromedp.Navigate(p["url"].(string)), chromedp.WaitVisible(field("Code")))
	do(t, ctx, "step up", chromedp.SendKeys(field("Code"), s.SMSCode(t, phone, seen)), chromedp.Click(button("Verify")),
		chromedp.WaitVisible(button("Regenerate backup codes")))

	seen = len(s.Twilio.Messages())
	do(t, ctx, "regenerate", chromedp.Click(button("Regenerate backup codes")), chromedp.WaitVisible(field("Code")))
	do(t, ctx, "verify", chromedp.SendKeys(field("Code"), s.SMSCode(t, phone, seen)), chromedp.Click(button("Verify")))
	codes := backupCodes(t, ctx)
	if len(codes) != 10 {
		t.Errorf("new backup codes: %v", codes)
	}
	shot(t, ctx, "manage-backup-codes")
	s.waitMail(t, "erin@example.test", "New backup codes were created")
	do(t, ctx, "back to the settings", chromedp.Click(chromedp.Search(`//a[normalize-space()="Continue"]`)),
		chromedp.WaitVisible(field("New phone number")))
	if strings.Contains(pageText(t, ctx), codes[0]) {
		t.Error("the backup codes are shown again")
	}

	seen = len(s.Twilio.Messages())
	do(t, ctx, "new number", chromedp.SendKeys(field("New phone number"), newPhone), chromedp.Click(button("Change phone number")),
		chromedp.WaitVisible(field("Code")))
	if text := pageText(t, ctx); !strings.Contains(text, "current number") {
		t.Errorf("first step: %s", text)
	}
	shot(t, ctx, "manage-phone-old")
	do(t, ctx, "old number's code", chromedp.SendKeys(field("Code"), s.SMSCode(t, phone, seen)), chromedp.Click(button("Verify")),
		chromedp.WaitVisible(chromedp.Search(`//p[contains(., "your new number")]`)))
	do(t, ctx, "new number's code", chromedp.SendKeys(field("Code"), s.SMSCode(t, newPhone, seen)), chromedp.Click(button("Verify")),
		chromedp.WaitVisible(button("Change phone number")))
	if text := pageText(t, ctx); !strings.Contains(text, "157") {
		t.Errorf("settings after the change: %s", text)
	}
	s.waitMail(t, "erin@example.test", "phone number for two-factor authentication was changed")
	// A backup code shown on the page works (the old ones are void).
	ev := s.Must(t, 200, "POST", "/v1/logins/evaluate", s.app, map[string]any{"user_id": "erin", "ip": "203.0.113.9", "user_agent": ua})
	ch := ev["challenge"].(map[string]any)
	if ch["destination"] == nil || !strings.HasSuffix(ch["destination"].(string), "157") {
		t.Errorf("login challenge after the change: %v", ch)
	}
	s.Must(t, 200, "POST", "/v1/challenges/"+ch["id"].(string)+"/verify", s.app, map[string]any{"code": codes[0]})

	// A second factor asks for the current one first (the API's step-up).
	seen = len(s.Twilio.Messages())
	do(t, ctx, "add an authenticator app", chromedp.Click(button("Set up an authenticator app")),
		chromedp.WaitVisible(field("Code")))
	if text := pageText(t, ctx); !strings.Contains(text, "Confirm it's you") || strings.Contains(text, "Key:") {
		t.Errorf("step-up before a new factor: %s", text)
	}
	do(t, ctx, "step up", chromedp.SendKeys(field("Code"), s.SMSCode(t, newPhone, seen)), chromedp.Click(button("Verify")),
		chromedp.WaitVisible(chromedp.CSS("#totp-secret")))
	secret, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#totp-secret")))
	if err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCode(strings.ReplaceAll(secret, " ", ""), time.Now())
	if err != nil {
		t.Fatalf("the page's key: %v", err)
	}
	do(t, ctx, "app's code", chromedp.SendKeys(field("Code"), code), chromedp.Click(button("Verify")),
		chromedp.WaitVisible(button("Set up a new authenticator app")))
	shot(t, ctx, "manage-settings")
	s.waitMail(t, "erin@example.test", "An authenticator app was added")

	res := s.finish(t, ctx, 1, "m2")
	if res["user_id"] != "erin" || res["method"] != "sms" {
		t.Fatalf("exchange: %v", res)
	}
}

// TestPromptSettingsRefusals: the settings changes need the page's CSRF
// token, and a settings page (after its step-up) or an enrolment; a
// login's page and a settings page before its step-up change nothing.
func TestPromptSettingsRefusals(t *testing.T) {
	s := newSite(t)
	s.enrolSMS(t, "gus")
	before := len(s.Twilio.Messages())
	_, loginURL := s.login(t, "gus", "r1")
	// The login's own code is sent by the delivery worker: wait for it
	// before counting what the refused requests might send.
	s.SMSCode(t, phone, before)
	manage := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": "gus", "action": "manage", "return_url": s.host.callback()})
	sent := len(s.Twilio.Messages())
	type page struct {
		c    *http.Client
		csrf string
	}
	pages := map[string]page{}
	for _, u := range []string{loginURL, manage["url"].(string)} {
		c, csrf := openPage(t, u)
		pages[u] = page{c, csrf}
	}
	for _, tc := range []struct {
		name, url, action string
		form              url.Values
	}{
		{"login: text message", loginURL, "sms", url.Values{"phone": {"+61491570157"}}},
		{"login: authenticator app", loginURL, "totp", nil},
		{"login: e-mail", loginURL, "email", nil},
		{"settings before the step-up: new backup codes", manage["url"].(string), "backup-codes", nil},
		{"settings before the step-up: phone change", manage["url"].(string), "phone", url.Values{"new_phone": {"+61491570157"}}},
		{"settings before the step-up: turn off", manage["url"].(string), "disable", nil},
	} {
		c := pages[tc.url].c
		form := url.Values{"csrf": {pages[tc.url].csrf}}
		for k, v := range tc.form {
			form[k] = v
		}
		r, err := c.PostForm(tc.url+"/"+tc.action, form)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 422 || !strings.Contains(string(body), "prove a current factor first") {
			t.Errorf("%s: %d %s", tc.name, r.StatusCode, body)
		}
		form.Set("csrf", "forged")
		if r, err := c.PostForm(tc.url+"/"+tc.action, form); err != nil || r.StatusCode != 403 {
			t.Errorf("%s without the CSRF token: %v %v", tc.name, r.StatusCode, err)
		}
	}
	// Only the settings page's own step-up code went out (the refused
	// requests queued nothing: they failed before any commit).
	s.SMSCode(t, phone, sent)
	if n := len(s.Twilio.Messages()) - sent; n != 1 {
		t.Errorf("%d text messages sent, want the step-up's only", n)
	}
}

// openPage opens a prompt in a cookie-keeping client and returns it with
// the page's CSRF token.
func openPage(t *testing.T, u string) (*http.Client, string) {
	t.Helper()
	p := pagetest.Open(t, u)
	return p.Client, p.CSRF
}

// TestPromptManageDisable turns two-step verification off on the
// settings page: the API's confirmation code, then the user's factors
// are gone and the API's e-mail arrives; Continue finishes the prompt.
func TestPromptManageDisable(t *testing.T) {
	s := newSite(t)
	s.enrolSMS(t, "hal")
	seen := len(s.Twilio.Messages())
	p := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": "hal", "action": "manage", "return_url": s.host.callback(), "state": "d1"})
	ctx := browser(t)
	do(t, ctx, "open", chromedp.Navigate(p["url"].(string)), chromedp.WaitVisible(field("Code")))
	do(t, ctx, "step up", chromedp.SendKeys(field("Code"), s.SMSCode(t, phone, seen)), chromedp.Click(button("Verify")),
		chromedp.WaitVisible(button("Turn off two-step verification")))

	seen = len(s.Twilio.Messages())
	do(t, ctx, "turn off", chromedp.Click(button("Turn off two-step verification")), chromedp.WaitVisible(field("Code")))
	if text := pageText(t, ctx); !strings.Contains(text, "to turn off two-step verification") {
		t.Errorf("confirmation: %s", text)
	}
	shot(t, ctx, "manage-disable-code")
	do(t, ctx, "verify", chromedp.SendKeys(field("Code"), s.SMSCode(t, phone, seen)), chromedp.Click(button("Verify")),
		chromedp.WaitVisible(chromedp.Search(`//h3[normalize-space()="Two-step verification is off"]`)))
	shot(t, ctx, "manage-disabled")
	user := s.Must(t, 200, "GET", "/v1/users/hal", s.app, nil)
	if user["enrolled"] != false || len(user["factors"].([]any)) != 0 || user["backup_codes_left"] != 0.0 {
		t.Errorf("user after turning off: %v", user)
	}
	s.waitMail(t, "hal@example.test", "Two-factor authentication was turned off")
	res := s.finish(t, ctx, 1, "d1")
	if res["user_id"] != "hal" || res["verified"] != true || res["method"] != "sms" {
		t.Fatalf("exchange: %v", res)
	}
}

// TestPromptDisableRequired: while the policy requires two-step
// verification, the settings page shows the engine's refusal and nothing
// changes; with no change pending, a passkey has nothing to answer.
func TestPromptDisableRequired(t *testing.T) {
	s := newSite(t)
	s.enrolSMS(t, "ivy")
	s.Must(t, 200, "PUT", "/v1/admin/policy", s.mgr, map[string]any{"mode": "required"})
	seen := len(s.Twilio.Messages())
	p := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": "ivy", "action": "manage", "return_url": s.host.callback()})
	u := p["url"].(string)
	c, csrf := openPage(t, u)
	r, err := c.PostForm(u+"/verify", url.Values{"csrf": {csrf}, "code": {s.SMSCode(t, phone, seen)}})
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 200 {
		t.Fatalf("step-up: %d", r.StatusCode)
	}
	r, err = c.PostForm(u+"/disable", url.Values{"csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 422 || !strings.Contains(string(body), "policy requires two-factor authentication") {
		t.Errorf("turn off while required: %d %s", r.StatusCode, body)
	}
	if user := s.Must(t, 200, "GET", "/v1/users/ivy", s.app, nil); user["enrolled"] != true {
		t.Errorf("user after the refusal: %v", user)
	}
	// Nothing pending: a passkey has nothing to answer.
	req, _ := http.NewRequest("POST", u+"/passkey/login/begin", strings.NewReader("{}"))
	req.Header.Set("X-CSRF-Token", csrf)
	if r, err = c.Do(req); err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 422 || !strings.Contains(string(body), "challenge_not_found") {
		t.Errorf("passkey with no change pending: %d %s", r.StatusCode, body)
	}
}

// TestPromptEnrolEmail completes an `enroll` login with codes by e-mail
// to the profile's address: the mailed code turns the factor on and the
// first backup codes are shown once.
func TestPromptEnrolEmail(t *testing.T) {
	s := newSite(t)
	loginID, u := s.enrolLogin(t, "jo", "m1")
	ctx := browser(t)

	seen := len(s.SMTP.Messages())
	do(t, ctx, "open", chromedp.Navigate(u), chromedp.WaitVisible(button("Send codes by e-mail")))
	if text := pageText(t, ctx); !strings.Contains(text, "j•••@example.test") || strings.Contains(text, "jo@example.test") {
		t.Errorf("e-mail offer: %s", text)
	}
	do(t, ctx, "e-mail", chromedp.Click(button("Send codes by e-mail")), chromedp.WaitVisible(field("Code")))
	if text := pageText(t, ctx); !strings.Contains(text, "Type it to turn on codes by e-mail") {
		t.Errorf("e-mail code: %s", text)
	}
	shot(t, ctx, "enrol-email-code")
	do(t, ctx, "verify", chromedp.SendKeys(field("Code"), s.mailCode(t, "jo@example.test", seen)), chromedp.Click(button("Verify")))
	if codes := backupCodes(t, ctx); len(codes) != 10 {
		t.Errorf("backup codes: %v", codes)
	}
	res := s.finish(t, ctx, 1, "m1")
	if res["user_id"] != "jo" || res["login_id"] != loginID || res["verified"] != true || res["method"] != "email" {
		t.Fatalf("exchange: %v", res)
	}
	s.waitMail(t, "jo@example.test", "Sign-in codes by e-mail were turned on")
}

// TestPromptPasskeyOnlyChange: a user whose only factor is a passkey
// proves it with the passkey, not a backup code, before a settings
// change, here turning two-step verification off.
func TestPromptPasskeyOnlyChange(t *testing.T) {
	s := newSite(t)
	s.Must(t, 200, "PUT", "/v1/users/kim", s.app, map[string]any{"email": "kim@example.test"})
	ctx := browser(t)
	authenticator(t, ctx)
	p := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": "kim", "action": "manage", "return_url": s.host.callback(), "state": "k1"})
	do(t, ctx, "add a passkey", chromedp.Navigate(p["url"].(string)), chromedp.Click(button("Add a passkey")),
		chromedp.WaitVisible(chromedp.Search(`//*[@id="status" and normalize-space()="Passkey added"]`)),
		chromedp.Click(button("Continue")))
	s.host.wait(t, 1)

	p = s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": "kim", "action": "manage", "return_url": s.host.callback(), "state": "k2"})
	do(t, ctx, "step up with the passkey", chromedp.Navigate(p["url"].(string)), chromedp.Click(button("Use a passkey")),
		chromedp.WaitVisible(button("Turn off two-step verification")))
	do(t, ctx, "turn off", chromedp.Click(button("Turn off two-step verification")), chromedp.WaitVisible(button("Use a passkey")))
	if text := pageText(t, ctx); !strings.Contains(text, "Use your passkey to confirm it's you") {
		t.Errorf("confirmation: %s", text)
	}
	shot(t, ctx, "manage-change-passkey")
	do(t, ctx, "confirm with the passkey", chromedp.Click(button("Use a passkey")),
		chromedp.WaitVisible(chromedp.Search(`//h3[normalize-space()="Two-step verification is off"]`)))
	user := s.Must(t, 200, "GET", "/v1/users/kim", s.app, nil)
	if keys, _ := user["passkeys"].([]any); user["enrolled"] != false || len(keys) != 0 {
		t.Errorf("user after turning off: %v", user)
	}
	s.waitMail(t, "kim@example.test", "Two-factor authentication was turned off")
	res := s.finish(t, ctx, 2, "k2")
	if res["user_id"] != "kim" || res["method"] != "passkey" {
		t.Fatalf("exchange: %v", res)
	}
}
