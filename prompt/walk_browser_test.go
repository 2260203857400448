package prompt_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stepup-auth/stepup/internal/pagetest"
)

// a11yProblems lists what a check by visible labels relies on and the page
// lacks: one <h1>, a <label for> for every input a person fills in, a text
// on every button, aria-describedby pointing at shown elements, and an
// error at the top tied to the code field.
const a11yProblems = `(() => {
  const out = [];
  const h1 = document.querySelectorAll("h1").length;
  if (h1 !== 1) out.push(h1 + " h1");
  for (const i of document.querySelectorAll("input:not([type=hidden])")) {
    if (!i.id || !document.querySelector('label[for="' + i.id + '"]')) out.push("input without <label for>: " + (i.id || i.name));
  }
  for (const b of document.querySelectorAll("button, summary")) {
    if (!b.textContent.trim()) out.push("button without text");
  }
  for (const e of document.querySelectorAll("[aria-describedby]")) {
    for (const id of e.getAttribute("aria-describedby").split(/\s+/)) {
      if (!document.getElementById(id)) out.push("aria-describedby to a missing #" + id);
    }
  }
  const st = document.getElementById("status"), code = document.getElementById("code");
  if (st && code && st.classList.contains("error") && st.textContent.trim() &&
      !(code.getAttribute("aria-describedby") || "").split(/\s+/).includes("status")) out.push("the error is not tied to the Code field");
  return out;
})()`

// a11y fails the test for each problem a11yProblems finds on the page.
func a11y(t *testing.T, ctx context.Context, where string) {
	t.Helper()
	probs, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](a11yProblems))
	if err != nil {
		t.Fatalf("a11y %s: %v", where, err)
	}
	for _, p := range probs {
		t.Errorf("%s: %s", where, p)
	}
}

// TestPromptWalkCancel: "Cancel and go back" on a login page sends the
// browser back with ?error=cancelled and the state, and no code.
func TestPromptWalkCancel(t *testing.T) {
	s := newSite(t)
	s.enrolSMS(t, "cat")
	ctx := browser(t)
	_, u := s.login(t, "cat", "c-1")
	do(t, ctx, "open", chromedp.Navigate(u), chromedp.WaitVisible(field("Code")))
	a11y(t, ctx, "login page")
	do(t, ctx, "wrong code", chromedp.SendKeys(field("Code"), "000000"), chromedp.Click(button("Verify")),
		chromedp.WaitVisible(chromedp.CSS("#status.error")))
	a11y(t, ctx, "login page after a wrong code")
	do(t, ctx, "cancel", chromedp.Click(button("Cancel and go back")))
	q := s.host.wait(t, 1)
	if q.Get("error") != "cancelled" || q.Get("state") != "c-1" || q.Get("stepup_code") != "" {
		t.Fatalf("return: %v", q)
	}
}

// TestPromptWalkBackupCodeLogin: "Send a new code" says a code is on its
// way; a backup code typed in the "Code" field with "Remember this device"
// proves the login.
func TestPromptWalkBackupCodeLogin(t *testing.T) {
	s := newSite(t)
	s.Must(t, 200, "PUT", "/v1/users/bea", s.app, map[string]any{"email": "bea@example.test"})
	seen := len(s.Twilio.Messages())
	ch := s.Must(t, 201, "POST", "/v1/users/bea/sms", s.app, map[string]any{"phone": phone})["challenge"].(map[string]any)
	v := s.Must(t, 200, "POST", "/v1/challenges/"+ch["id"].(string)+"/verify", s.app, map[string]any{"code": s.SMSCode(t, phone, seen)})
	codes, _ := v["result"].(map[string]any)["backup_codes"].([]any)
	if len(codes) == 0 {
		t.Fatalf("enrol: %v", v)
	}
	ctx := browser(t)
	seen = len(s.Twilio.Messages())
	loginID, u := s.login(t, "bea", "b-1")
	s.SMSCode(t, phone, seen)
	seen = len(s.Twilio.Messages())
	do(t, ctx, "open", chromedp.Navigate(u), chromedp.WaitVisible(field("Code")))
	s.now.Store(int64(31 * time.Second)) // a new code may be asked for after 30 s
	do(t, ctx, "send a new code", chromedp.Click(button("Send a new code")),
		chromedp.WaitVisible(chromedp.Search(`//*[@id="status" and normalize-space()="A new code is on its way."]`)))
	s.SMSCode(t, phone, seen)
	do(t, ctx, "backup code", chromedp.SendKeys(field("Code"), codes[0].(string)), chromedp.Click(checkbox("Remember this device")),
		chromedp.Click(button("Verify")))
	q := s.host.wait(t, 1)
	if q.Get("state") != "b-1" || q.Get("stepup_code") == "" {
		t.Fatalf("return: %v", q)
	}
	res := s.Must(t, 200, "POST", "/v1/prompts/exchange", s.app, map[string]any{"code": q.Get("stepup_code")})
	if res["user_id"] != "bea" || res["login_id"] != loginID || res["verified"] != true || res["device_token"] == nil {
		t.Fatalf("exchange: %v", res)
	}
}

// TestPromptWalkEnrolPasskey: an `enroll` login set up with "Add a
// passkey": "Passkey added", the backup codes once, "Continue" back to
// the host app, and the exchange names the passkey.
func TestPromptWalkEnrolPasskey(t *testing.T) {
	s := newSite(t)
	loginID, u := s.enrolLogin(t, "pia", "p1")
	ctx := browser(t)
	authenticator(t, ctx)
	do(t, ctx, "open", chromedp.Navigate(u), chromedp.WaitVisible(button("Add a passkey")))
	a11y(t, ctx, "enrol page")
	do(t, ctx, "add a passkey", chromedp.Click(button("Add a passkey")),
		chromedp.WaitVisible(chromedp.Search(`//*[@id="status" and normalize-space()="Passkey added"]`)))
	if codes := backupCodes(t, ctx); len(codes) != 10 {
		t.Errorf("backup codes: %v", codes)
	}
	res := s.finish(t, ctx, 1, "p1")
	if res["user_id"] != "pia" || res["login_id"] != loginID || res["verified"] != true || res["method"] != "passkey" {
		t.Fatalf("exchange: %v", res)
	}
}

// TestPromptWalkRemovePasskey: settings → "Add a passkey" (the page says
// "Passkey added" and lists it) → "Remove".
func TestPromptWalkRemovePasskey(t *testing.T) {
	s := newSite(t)
	s.enrolSMS(t, "rex")
	ctx := browser(t)
	authenticator(t, ctx)
	seen := len(s.Twilio.Messages())
	p := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": "rex", "action": "manage", "return_url": s.host.callback(), "state": "r1"})
	do(t, ctx, "open settings", chromedp.Navigate(p["url"].(string)), chromedp.WaitVisible(field("Code")))
	a11y(t, ctx, "settings step-up")
	do(t, ctx, "step up", chromedp.SendKeys(field("Code"), s.SMSCode(t, phone, seen)), chromedp.Click(button("Verify")),
		chromedp.WaitVisible(button("Add a passkey")))
	a11y(t, ctx, "settings")
	do(t, ctx, "add a passkey", chromedp.Click(button("Add a passkey")),
		chromedp.WaitVisible(chromedp.Search(`//*[@id="status" and normalize-space()="Passkey added"]`)),
		chromedp.WaitVisible(chromedp.Search(`//h3[normalize-space()="Passkeys"]`)))
	if keys, _ := s.Must(t, 200, "GET", "/v1/users/rex", s.app, nil)["passkeys"].([]any); len(keys) != 1 {
		t.Fatalf("passkeys after adding: %v", keys)
	}
	// The settings page before the removal has "Add a passkey" too: wait
	// for the list to go, not for the button.
	do(t, ctx, "remove", chromedp.Click(button("Remove")),
		chromedp.WaitNotPresent(chromedp.Search(`//h3[normalize-space()="Passkeys"]`)), chromedp.WaitVisible(button("Add a passkey")))
	if strings.Contains(pageText(t, ctx), "Passkeys") {
		t.Errorf("the page still lists a passkey: %s", pageText(t, ctx))
	}
	if keys, _ := s.Must(t, 200, "GET", "/v1/users/rex", s.app, nil)["passkeys"].([]any); len(keys) != 0 {
		t.Fatalf("passkeys after removing: %v", keys)
	}
}

// TestPromptWalkPasskeyOnlyBackupLogin: a user whose only factor is a
// passkey, who lost it, signs in with one of the backup codes the page
// showed at enrolment ("Each code works once if you lose your device"):
// the login page (and the settings page's step-up) has the "Code" field
// for it; the passkey with "Remember this device" remembers the device.
func TestPromptWalkPasskeyOnlyBackupLogin(t *testing.T) {
	s := newSite(t)
	_, u := s.enrolLogin(t, "lou", "l1")
	login := map[string]any{"user_id": "lou", "ip": "203.0.113.9", "user_agent": ua}
	ctx := browser(t)
	authenticator(t, ctx)
	do(t, ctx, "add a passkey", chromedp.Navigate(u), chromedp.Click(button("Add a passkey")),
		chromedp.WaitVisible(chromedp.Search(`//*[@id="status" and normalize-space()="Passkey added"]`)))
	codes := backupCodes(t, ctx)
	s.finish(t, ctx, 1, "l1")

	ev := s.Must(t, 200, "POST", "/v1/logins/evaluate", s.app, login)
	if ch, _ := ev["challenge"].(map[string]any); ev["decision"] != "challenge" || ch["channel"] != "passkey" {
		t.Fatalf("next login: %v", ev)
	}
	p := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"login_id": ev["login_id"], "return_url": s.host.callback(), "state": "l2"})
	do(t, ctx, "open", chromedp.Navigate(p["url"].(string)), chromedp.WaitVisible(button("Use a passkey")))
	a11y(t, ctx, "passkey login")
	do(t, ctx, "a backup code", chromedp.SendKeys(field("Code"), codes[0]), chromedp.Click(button("Verify")))
	q := s.host.wait(t, 2)
	if q.Get("state") != "l2" || q.Get("stepup_code") == "" {
		t.Fatalf("return: %v", q)
	}
	res := s.Must(t, 200, "POST", "/v1/prompts/exchange", s.app, map[string]any{"code": q.Get("stepup_code")})
	if res["user_id"] != "lou" || res["login_id"] != ev["login_id"] || res["verified"] != true {
		t.Fatalf("exchange: %v", res)
	}

	// The passkey itself, with "Remember this device": the next login
	// with the device token is allowed.
	login["device_id"] = "laptop-9"
	ev = s.Must(t, 200, "POST", "/v1/logins/evaluate", s.app, login)
	p = s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"login_id": ev["login_id"], "return_url": s.host.callback(), "state": "l3"})
	do(t, ctx, "passkey", chromedp.Navigate(p["url"].(string)), chromedp.Click(checkbox("Remember this device")),
		chromedp.Click(button("Use a passkey")))
	q = s.host.wait(t, 3)
	res = s.Must(t, 200, "POST", "/v1/prompts/exchange", s.app, map[string]any{"code": q.Get("stepup_code")})
	if res["login_id"] != ev["login_id"] || res["method"] != "passkey" || res["device_token"] == nil {
		t.Fatalf("exchange: %v", res)
	}
	login["device_token"] = res["device_token"]
	if ev := s.Must(t, 200, "POST", "/v1/logins/evaluate", s.app, login); ev["decision"] != "allow" {
		t.Errorf("remembered device: %v", ev)
	}

	// The settings page's step-up takes a backup code too.
	p = s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": "lou", "action": "manage", "return_url": s.host.callback(), "state": "l4"})
	do(t, ctx, "settings by a backup code", chromedp.Navigate(p["url"].(string)), chromedp.SendKeys(field("Code"), codes[1]),
		chromedp.Click(button("Verify")), chromedp.WaitVisible(button("Turn off two-step verification")))
}

// TestPromptWalkAnotherMethod: a user with text messages and an
// authenticator app, asked for the app's code, picks "Text message"
// under "Use another method" on the login page and types the texted code.
func TestPromptWalkAnotherMethod(t *testing.T) {
	s := newSite(t)
	s.enrolSMS(t, "amy")
	s.addApp(t, "amy")

	ctx := browser(t)
	loginID, u := s.login(t, "amy", "a-1")
	do(t, ctx, "open", chromedp.Navigate(u), chromedp.WaitVisible(field("Code")),
		chromedp.WaitVisible(chromedp.Search(`//p[normalize-space()="Type the code your authenticator app shows."]`)))
	seen := len(s.Twilio.Messages())
	do(t, ctx, "another method", chromedp.Click(chromedp.Search(`//summary[normalize-space()="Use another method"]`)),
		chromedp.Click(button("Text message")), chromedp.WaitVisible(button("Send a new code")))
	a11y(t, ctx, "login by text message")
	do(t, ctx, "the texted code", chromedp.SendKeys(field("Code"), s.SMSCode(t, phone, seen)), chromedp.Click(button("Verify")))
	q := s.host.wait(t, 1)
	res := s.Must(t, 200, "POST", "/v1/prompts/exchange", s.app, map[string]any{"code": q.Get("stepup_code")})
	if res["user_id"] != "amy" || res["login_id"] != loginID || res["method"] != "sms" {
		t.Fatalf("exchange: %v", res)
	}
}

// addApp gives user, who has text messages, an authenticator app through
// the API (a step-up by text message first).
func (s site) addApp(t *testing.T, user string) *pagetest.Authenticator {
	t.Helper()
	seen := len(s.Twilio.Messages())
	ch := s.Must(t, 201, "POST", "/v1/users/"+user+"/totp", s.app, nil)["challenge"].(map[string]any)
	v := s.Must(t, 200, "POST", "/v1/challenges/"+ch["id"].(string)+"/verify", s.app, map[string]any{"code": s.SMSCode(t, phone, seen)})
	next := v["result"].(map[string]any)["next_challenge"].(map[string]any)
	app := &pagetest.Authenticator{Secret: v["result"].(map[string]any)["secret"].(string)}
	s.Must(t, 200, "POST", "/v1/challenges/"+next["id"].(string)+"/verify", s.app, map[string]any{"code": app.Code(t)})
	return app
}

// TestPromptWalkNewApp: settings → "Set up a new authenticator app" asks
// for a current factor's code first ("Back" leaves it), then shows the QR
// code and key; the new app's code completes it.
func TestPromptWalkNewApp(t *testing.T) {
	s := newSite(t)
	s.enrolSMS(t, "ned")
	old := s.addApp(t, "ned")
	ctx := browser(t)
	p := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": "ned", "action": "manage", "return_url": s.host.callback(), "state": "n1"})
	do(t, ctx, "open settings", chromedp.Navigate(p["url"].(string)), chromedp.WaitVisible(field("Code")))
	if text := pageText(t, ctx); !strings.Contains(text, "authenticator app") {
		t.Fatalf("step-up: %s", text)
	}
	do(t, ctx, "step up", chromedp.SendKeys(field("Code"), old.Code(t)), chromedp.Click(button("Verify")),
		chromedp.WaitVisible(button("Set up a new authenticator app")))
	do(t, ctx, "new app, then Back", chromedp.Click(button("Set up a new authenticator app")), chromedp.WaitVisible(field("Code")),
		chromedp.Click(button("Back")), chromedp.WaitVisible(button("Set up a new authenticator app")))
	do(t, ctx, "new app", chromedp.Click(button("Set up a new authenticator app")), chromedp.WaitVisible(field("Code")))
	do(t, ctx, "confirm with the old app", chromedp.SendKeys(field("Code"), old.Code(t)), chromedp.Click(button("Verify")),
		chromedp.WaitVisible(chromedp.CSS("#totp-secret")), chromedp.WaitVisible(chromedp.Search(`//img[starts-with(@alt, "QR code")]`)))
	a11y(t, ctx, "new app")
	secret, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#totp-secret")))
	if err != nil {
		t.Fatal(err)
	}
	app := &pagetest.Authenticator{Secret: strings.ReplaceAll(secret, " ", "")}
	do(t, ctx, "new app's code", chromedp.SendKeys(field("Code"), app.Code(t)), chromedp.Click(button("Verify")),
		chromedp.WaitVisible(button("Set up a new authenticator app")))
	res := s.finish(t, ctx, 1, "n1")
	if res["user_id"] != "ned" || res["verified"] != true {
		t.Fatalf("exchange: %v", res)
	}
}

// TestPromptWalkExpiredCode: a login page left open past the code's 5
// minutes (the page lasts 10) says the code expired and what works next:
// it offered "Send a new code", which the expired challenge refused again
// with the same advice, a dead end.
func TestPromptWalkExpiredCode(t *testing.T) {
	s := newSite(t)
	s.enrolSMS(t, "eve")
	ctx := browser(t)
	seen := len(s.Twilio.Messages())
	_, u := s.login(t, "eve", "x-1")
	code := s.SMSCode(t, phone, seen)
	do(t, ctx, "open", chromedp.Navigate(u), chromedp.WaitVisible(field("Code")))
	s.now.Store(int64(6 * time.Minute))
	do(t, ctx, "late code", chromedp.SendKeys(field("Code"), code), chromedp.Click(button("Verify")),
		chromedp.WaitVisible(chromedp.CSS("#status.error")))
	text := pageText(t, ctx)
	if !strings.Contains(text, "The code expired. Go back to the application and start again.") || strings.Contains(text, "Send a new code") {
		t.Errorf("after a late code: %s", text)
	}
	do(t, ctx, "cancel", chromedp.Click(button("Cancel and go back")))
	if q := s.host.wait(t, 1); q.Get("error") != "cancelled" || q.Get("state") != "x-1" {
		t.Fatalf("return: %v", q)
	}

	// A settings change whose code expired: the settings, to start again.
	seen = len(s.Twilio.Messages())
	p := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": "eve", "action": "manage", "return_url": s.host.callback(), "state": "x-2"})
	do(t, ctx, "settings", chromedp.Navigate(p["url"].(string)), chromedp.WaitVisible(field("Code")))
	do(t, ctx, "step up", chromedp.SendKeys(field("Code"), s.SMSCode(t, phone, seen)),
		chromedp.Click(button("Verify")), chromedp.WaitVisible(button("Regenerate backup codes")))
	seen = len(s.Twilio.Messages())
	do(t, ctx, "regenerate", chromedp.Click(button("Regenerate backup codes")), chromedp.WaitVisible(field("Code")))
	code = s.SMSCode(t, phone, seen)
	s.now.Store(int64(12 * time.Minute))
	do(t, ctx, "late code", chromedp.SendKeys(field("Code"), code), chromedp.Click(button("Verify")),
		chromedp.WaitVisible(chromedp.CSS("#status.error")))
	do(t, ctx, "start again", chromedp.WaitVisible(button("Regenerate backup codes")))
}
