package e2e_test

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"

	"github.com/stepup-auth/stepup/internal/apptest"
	"github.com/stepup-auth/stepup/internal/pagetest"
)

// lcCheckTOTPSetup checks the enrolment material an answer carries and
// returns the authenticator holding its secret.
func lcCheckTOTPSetup(t testing.TB, m map[string]any, account string) *pagetest.Authenticator {
	t.Helper()
	secret, uri, qr := lcStr(m, "secret"), lcStr(m, "otpauth_uri"), lcStr(m, "qr_png")
	if secret == "" || uri == "" || qr == "" {
		t.Fatalf("TOTP set-up without secret, otpauth_uri or qr_png: %v", m)
	}
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" {
		t.Errorf("otpauth_uri %q: %v", uri, err)
	}
	if u != nil && (u.Query().Get("secret") != secret || !strings.Contains(u.Path, account)) {
		t.Errorf("otpauth_uri %q does not hold the secret and the account %s", uri, account)
	}
	key, err := otp.NewKeyFromURL(uri)
	if err != nil || key.Secret() != secret || key.Period() != pagetest.Step || key.Digits() != otp.DigitsSix {
		t.Errorf("otpauth_uri %q: key %v, %v", uri, key, err)
	}
	b, err := base64.StdEncoding.DecodeString(qr)
	if err != nil {
		t.Fatalf("qr_png is not base64: %v", err)
	}
	if !bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("qr_png does not start with the PNG signature: % x", b[:min(len(b), 8)])
	}
	if cfg, err := png.DecodeConfig(bytes.NewReader(b)); err != nil || cfg.Width < 21 || cfg.Height < 21 {
		t.Errorf("qr_png: %+v, %v", cfg, err)
	}
	return &pagetest.Authenticator{Secret: secret}
}

// enrollTOTP enrols an authenticator app as the first factor of user and
// returns it with the first backup codes.
func (e *lcEnv) enrollTOTP(t testing.TB, user string) (*pagetest.Authenticator, []string) {
	t.Helper()
	st := e.must(t, 201, "POST", "/v1/users/"+user+"/totp", nil)
	app := lcCheckTOTPSetup(t, st, user)
	res := e.verify(t, lcStr(lcObj(st, "challenge"), "id"), app.Code(t))
	if res.Status != 200 || res.Body["purpose"] != "enroll_totp" {
		t.Fatalf("TOTP enrolment of %s: %d %s", user, res.Status, res.Raw)
	}
	return app, lcStrings(lcObj(res.Body, "result")["backup_codes"])
}

// TestTOTPEnrolment: a user without a factor scans the QR code and proves
// the app with its current code.
func TestTOTPEnrolment(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})
	st := e.must(t, 201, "POST", "/v1/users/uma/totp", map[string]any{"ip": lcLaptop.IP, "user_agent": lcLaptop.UA})
	app := lcCheckTOTPSetup(t, st, "uma")
	ch := lcObj(st, "challenge")
	if ch["purpose"] != "enroll_totp" || ch["channel"] != "totp" || ch["status"] != "pending" || st["step_up"] == true {
		t.Fatalf("TOTP enrolment started: %v", st)
	}
	if r := e.do(t, "GET", "/v1/users/uma", nil); r.Status == 200 && r.Body["enrolled"] != false {
		t.Errorf("enrolled before the app's code: %s", r.Raw)
	}
	// A code of another secret is refused.
	other := &pagetest.Authenticator{Secret: "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}
	lcWantErr(t, e.verify(t, lcStr(ch, "id"), other.Code(t)), 422, "invalid_code")

	res := e.verify(t, lcStr(ch, "id"), app.Code(t))
	if res.Status != 200 || res.Body["purpose"] != "enroll_totp" || len(lcStrings(lcObj(res.Body, "result")["backup_codes"])) != 10 {
		t.Fatalf("TOTP enrolment: %d %s", res.Status, res.Raw)
	}
	u := e.user(t, "uma")
	if u["enrolled"] != true || !slices.Equal(lcChannels(u), []string{"totp"}) || u["backup_codes_left"] != 10.0 {
		t.Errorf("after TOTP enrolment: %v", u)
	}
	if strings.Contains(string(e.do(t, "GET", "/v1/users/uma", nil).Raw), app.Secret) {
		t.Errorf("GET /v1/users shows the TOTP secret")
	}
	lcWantErr(t, e.verify(t, lcStr(ch, "id"), app.Code(t)), 409, "challenge_used")
	if n := len(e.Twilio.Messages()); n != 0 {
		t.Errorf("TOTP enrolment sent %d SMS", n)
	}
}

// TestTOTPLogin: a TOTP user's login challenge asks for the app's code, sends
// nothing, and refuses a code of a step already used.
func TestTOTPLogin(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})
	e.policy(t, map[string]any{"challenge": "every_login"})
	app, _ := e.enrollTOTP(t, "vera")

	ev := e.evaluate(t, "vera", lcLaptop, "")
	ch := lcObj(ev, "challenge")
	if ev["decision"] != "challenge" || ch["channel"] != "totp" || ch["purpose"] != "login" ||
		!slices.Equal(lcStrings(ch["available_channels"]), []string{"totp"}) {
		t.Fatalf("login of a TOTP user: %v", ev)
	}
	id := lcStr(ch, "id")
	if got := e.must(t, 200, "GET", "/v1/challenges/"+id, nil); got["delivery_status"] != nil {
		t.Errorf("a TOTP challenge has a delivery: %v", got)
	}
	lcWantErr(t, e.do(t, "POST", "/v1/challenges/"+id+"/resend", nil), 422, "nothing_to_send")

	// The enrolment's code, same step, is a replay.
	lcWantErr(t, e.verify(t, id, app.Used(t)), 422, "invalid_code")
	res := e.verify(t, id, app.Code(t))
	if res.Status != 200 || res.Body["purpose"] != "login" || lcObj(res.Body, "result")["login_id"] != ev["login_id"] {
		t.Fatalf("login with the app's code: %d %s", res.Status, res.Raw)
	}

	// The same code on the next login is a replay too.
	id = lcStr(e.loginChallenge(t, "vera", lcLaptop), "id")
	lcWantErr(t, e.verify(t, id, app.Used(t)), 422, "invalid_code")
	if r := e.verify(t, id, app.Code(t)); r.Status != 200 {
		t.Errorf("login with a fresh code after a replay: %d %s", r.Status, r.Raw)
	}
	if n := len(e.Twilio.Messages()); n != 0 {
		t.Errorf("TOTP logins sent %d SMS", n)
	}
}

// TestTOTPReset: resetting the authenticator of a TOTP user needs the
// current app first; the old secret keeps working until the new one is
// proven, and not after.
func TestTOTPReset(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})
	e.policy(t, map[string]any{"challenge": "every_login"})
	oldApp, codes := e.enrollTOTP(t, "walt")

	st := e.must(t, 201, "POST", "/v1/users/walt/totp", nil)
	ch := lcObj(st, "challenge")
	if st["step_up"] != true || ch["purpose"] != "step_up" || ch["channel"] != "totp" {
		t.Fatalf("TOTP reset started: %v", st)
	}
	if st["secret"] != nil || st["otpauth_uri"] != nil || st["qr_png"] != nil {
		t.Errorf("the new secret is shown before the current app is proven: %v", st)
	}

	// The step-up is proven with the current app.
	res := e.verify(t, lcStr(ch, "id"), oldApp.Code(t))
	if res.Status != 200 {
		t.Errorf("step-up with the current authenticator's code: %d %s, want 200", res.Status, res.Raw)
		// Go on with a backup code so the rest of the reset is checked.
		res = e.verify(t, lcStr(ch, "id"), codes[0])
		if res.Status != 200 {
			t.Fatalf("step-up with a backup code: %d %s", res.Status, res.Raw)
		}
	}
	out := lcObj(res.Body, "result")
	next := lcObj(out, "next_challenge")
	if res.Body["purpose"] != "step_up" || next["purpose"] != "enroll_totp" || next["channel"] != "totp" {
		t.Fatalf("step-up result: %s", res.Raw)
	}
	newApp := lcCheckTOTPSetup(t, out, "walt")
	if newApp.Secret == oldApp.Secret {
		t.Fatalf("the reset gave the same secret")
	}

	// Until the new app is proven, the old one is the factor.
	lch := e.loginChallenge(t, "walt", lcLaptop)
	lcWantErr(t, e.verify(t, lcStr(lch, "id"), newApp.At(t, time.Now().Unix()/pagetest.Step)), 422, "invalid_code")
	if r := e.verify(t, lcStr(lch, "id"), oldApp.Code(t)); r.Status != 200 {
		t.Errorf("login with the old app while the reset is pending: %d %s", r.Status, r.Raw)
	}
	if u := e.user(t, "walt"); !slices.Equal(lcChannels(u), []string{"totp"}) {
		t.Errorf("factors while the reset is pending: %v", u)
	}

	// The new app's code completes the reset.
	res = e.verify(t, lcStr(next, "id"), newApp.Code(t))
	if res.Status != 200 || res.Body["purpose"] != "enroll_totp" {
		t.Fatalf("reset: %d %s", res.Status, res.Raw)
	}
	u := e.user(t, "walt")
	if u["enrolled"] != true || !slices.Equal(lcChannels(u), []string{"totp"}) {
		t.Errorf("after the reset: %v", u)
	}

	lch = e.loginChallenge(t, "walt", lcLaptop)
	lcWantErr(t, e.verify(t, lcStr(lch, "id"), oldApp.At(t, time.Now().Unix()/pagetest.Step+1)), 422, "invalid_code")
	if r := e.verify(t, lcStr(lch, "id"), newApp.Code(t)); r.Status != 200 {
		t.Errorf("login with the new app: %d %s", r.Status, r.Raw)
	}
}

// TestTOTPChannelSwitch: a user with an app and a phone is asked for the
// app's code and may move the login challenge to SMS, never to a factor it
// lacks.
func TestTOTPChannelSwitch(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})
	e.policy(t, map[string]any{"challenge": "every_login"})
	phone := lcPhone(321)
	e.enrollSMS(t, "xena", phone)

	// Adding the app needs a step-up on the phone.
	seen := len(e.Twilio.Messages())
	st := e.must(t, 201, "POST", "/v1/users/xena/totp", nil)
	if st["step_up"] != true || lcObj(st, "challenge")["channel"] != "sms" {
		t.Fatalf("TOTP for an SMS user: %v", st)
	}
	res := e.must(t, 200, "POST", "/v1/challenges/"+lcStr(lcObj(st, "challenge"), "id")+"/verify", map[string]any{"code": e.SMSCode(t, phone, seen)})
	app := lcCheckTOTPSetup(t, lcObj(res, "result"), "xena")
	next := lcObj(lcObj(res, "result"), "next_challenge")
	e.must(t, 200, "POST", "/v1/challenges/"+lcStr(next, "id")+"/verify", map[string]any{"code": app.Code(t)})
	if u := e.user(t, "xena"); !slices.Equal(lcChannels(u), []string{"totp", "sms"}) {
		t.Fatalf("factors: %v", lcChannels(u))
	}

	// The app by default; SMS on request.
	seen = len(e.Twilio.Messages())
	ev := e.evaluate(t, "xena", lcLaptop, "")
	ch := lcObj(ev, "challenge")
	if ev["decision"] != "challenge" || ch["channel"] != "totp" || !slices.Equal(lcStrings(ch["available_channels"]), []string{"totp", "sms"}) {
		t.Fatalf("login challenge: %v", ev)
	}
	id := lcStr(ch, "id")
	lcWantErr(t, e.do(t, "POST", "/v1/challenges/"+id+"/switch", map[string]any{"channel": "email"}), 422, "no_factor")
	lcWantErr(t, e.do(t, "POST", "/v1/challenges/"+id+"/switch", map[string]any{"channel": "pigeon"}), 400, "validation_failed")
	if got := e.must(t, 200, "GET", "/v1/challenges/"+id, nil); got["status"] != "pending" {
		t.Errorf("a refused switch changed the challenge: %v", got)
	}
	if n := e.smsCount(phone, seen); n != 0 {
		t.Errorf("%d SMS before switching to SMS", n)
	}

	sw := e.must(t, 200, "POST", "/v1/challenges/"+id+"/switch", map[string]any{"channel": "sms"})
	if sw["channel"] != "sms" || sw["purpose"] != "login" || sw["id"] == id || sw["status"] != "pending" || !strings.HasSuffix(lcStr(sw, "destination"), "321") {
		t.Fatalf("switch to SMS: %v", sw)
	}
	code := e.SMSCode(t, phone, seen)
	if got := e.must(t, 200, "GET", "/v1/challenges/"+id, nil); got["status"] != "cancelled" {
		t.Errorf("the challenge switched from: %v", got)
	}
	lcWantErr(t, e.verify(t, id, app.Code(t)), 410, "challenge_cancelled")
	res = e.must(t, 200, "POST", "/v1/challenges/"+lcStr(sw, "id")+"/verify", map[string]any{"code": code})
	if lcObj(res, "result")["login_id"] != ev["login_id"] {
		t.Errorf("verify after the switch: %v", res)
	}

	// A user with only the app cannot switch to SMS.
	e.enrollTOTP(t, "yuri")
	id = lcStr(e.loginChallenge(t, "yuri", lcLaptop), "id")
	lcWantErr(t, e.do(t, "POST", "/v1/challenges/"+id+"/switch", map[string]any{"channel": "sms"}), 422, "no_factor")
}
