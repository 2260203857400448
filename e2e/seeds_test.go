package e2e_test

// Flows of four help-centre articles of 2FA products (an authenticator app
// with backup codes; an organisation's optional or required 2FA with grace
// logins; SMS 2FA with dual confirmation and risk-based prompts) that the
// other suites do not walk end to end as the articles tell them. Helpers
// carry the seed prefix; the lc helpers of lifecycle_test.go are reused.

import (
	"slices"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/internal/apptest"
	"github.com/stepup-auth/stepup/internal/geoiptest"
	"github.com/stepup-auth/stepup/internal/pagetest"
)

// TestSeedAuthenticatorLostCodesThenTurnOff: a user of an authenticator
// app only signs in with a backup code when the app is out of reach; having
// lost the codes, sets the app up again (new QR code, the old app stops
// working) and gets new codes (the old ones stop working), proving each
// step with the app; then turns 2FA off with the app's code. Every change
// is mailed.
func TestSeedAuthenticatorLostCodesThenTurnOff(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})
	const addr = "juro@example.test"
	e.must(t, 200, "PUT", "/v1/users/juro", map[string]any{"email": addr})
	seenMail := len(e.SMTP.Messages())
	app, codes := e.enrollTOTP(t, "juro")
	if len(codes) != 10 {
		t.Fatalf("first backup codes: %v", codes)
	}
	e.mailTo(t, addr, seenMail, "authenticator app was added")

	// The app is out of reach at a login: a backup code signs in, once.
	e.policy(t, map[string]any{"challenge": "every_login"})
	seenMail = len(e.SMTP.Messages())
	ch := e.loginChallenge(t, "juro", lcLaptop)
	if ch["channel"] != "totp" {
		t.Fatalf("login challenge of an app user: %v", ch)
	}
	res := e.verify(t, lcStr(ch, "id"), codes[0])
	if res.Status != 200 || res.Body["purpose"] != "login" || lcObj(res.Body, "result")["backup_codes_left"] != 9.0 {
		t.Fatalf("login with a backup code: %d %s", res.Status, res.Raw)
	}
	e.mailTo(t, addr, seenMail, "backup code was used")

	// The codes are lost: a new authenticator, proven by the current app.
	seenMail = len(e.SMTP.Messages())
	st := e.must(t, 201, "POST", "/v1/users/juro/totp", nil)
	if st["step_up"] != true || lcObj(st, "challenge")["channel"] != "totp" {
		t.Fatalf("authenticator reset started: %v", st)
	}
	res = e.verify(t, lcStr(lcObj(st, "challenge"), "id"), app.Code(t))
	if res.Status != 200 {
		t.Fatalf("step-up with the current app: %d %s", res.Status, res.Raw)
	}
	newApp := lcCheckTOTPSetup(t, lcObj(res.Body, "result"), "juro")
	next := lcObj(lcObj(res.Body, "result"), "next_challenge")
	if r := e.verify(t, lcStr(next, "id"), newApp.Code(t)); r.Status != 200 || r.Body["purpose"] != "enroll_totp" {
		t.Fatalf("new authenticator: %d %s", r.Status, r.Raw)
	}
	e.mailTo(t, addr, seenMail, "authenticator app for two-factor authentication was reset")

	// New backup codes, proven by the new app; the old app is refused.
	seenMail = len(e.SMTP.Messages())
	bc := lcObj(e.must(t, 201, "POST", "/v1/users/juro/backup-codes", nil), "challenge")
	if bc["purpose"] != "backup_codes" || bc["channel"] != "totp" {
		t.Fatalf("new backup codes started: %v", bc)
	}
	lcWantErr(t, e.verify(t, lcStr(bc, "id"), app.At(t, time.Now().Unix()/pagetest.Step)), 422, "invalid_code")
	res = e.verify(t, lcStr(bc, "id"), newApp.Code(t))
	fresh := lcStrings(lcObj(res.Body, "result")["backup_codes"])
	if res.Status != 200 || len(fresh) != 10 {
		t.Fatalf("new backup codes: %d %s", res.Status, res.Raw)
	}
	e.mailTo(t, addr, seenMail, "New backup codes were created")
	if u := e.user(t, "juro"); !slices.Equal(lcChannels(u), []string{"totp"}) || u["backup_codes_left"] != 10.0 {
		t.Errorf("after the new app and codes: %v", u)
	}
	// The lost codes are void; the new ones work.
	lch := e.loginChallenge(t, "juro", lcLaptop)
	lcWantErr(t, e.verify(t, lcStr(lch, "id"), codes[1]), 422, "invalid_code")
	if r := e.verify(t, lcStr(lch, "id"), fresh[0]); r.Status != 200 {
		t.Errorf("login with a new backup code: %d %s", r.Status, r.Raw)
	}

	// Turning 2FA off asks for the app's code.
	seenMail = len(e.SMTP.Messages())
	dis := lcObj(e.must(t, 201, "POST", "/v1/users/juro/2fa/disable", nil), "challenge")
	if dis["purpose"] != "disable" || dis["channel"] != "totp" {
		t.Fatalf("turning off started: %v", dis)
	}
	lcWantErr(t, e.verify(t, lcStr(dis, "id"), app.At(t, time.Now().Unix()/pagetest.Step)), 422, "invalid_code")
	if u := e.user(t, "juro"); u["enrolled"] != true {
		t.Fatalf("the old app's code turned 2FA off: %v", u)
	}
	if r := e.verify(t, lcStr(dis, "id"), newApp.Code(t)); r.Status != 200 || r.Body["purpose"] != "disable" {
		t.Fatalf("turning off with the app's code: %d %s", r.Status, r.Raw)
	}
	if u := e.user(t, "juro"); u["enrolled"] != false || len(u["factors"].([]any)) != 0 || u["backup_codes_left"] != 0.0 {
		t.Errorf("after turning off: %v", u)
	}
	e.mailTo(t, addr, seenMail, "Two-factor authentication was turned off")
	if ev := e.evaluate(t, "juro", lcLaptop, ""); ev["decision"] != "allow" {
		t.Errorf("login after turning off: %v", ev)
	}
}

// TestSeedRequiredEveryLoginDefaultGrace: an organisation switches to
// "required, every login" without naming a grace count: a user without 2FA
// skips the first 5 logins, then must set up an authenticator app; from
// then on every login asks for the app's code, even the familiar one, and
// the user cannot turn 2FA off until the organisation makes it optional.
func TestSeedRequiredEveryLoginDefaultGrace(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})
	p := e.policy(t, map[string]any{"mode": "required", "challenge": "every_login"})
	if p["grace_logins"] != 5.0 {
		t.Fatalf("default grace_logins: %v", p["grace_logins"])
	}
	for _, left := range []float64{4, 3, 2, 1, 0} {
		ev := e.evaluate(t, "juve", lcLaptop, "")
		en := lcObj(ev, "enrollment")
		if ev["decision"] != "allow" || ev["challenge"] != nil || en["required"] != true || en["grace_logins_left"] != left {
			t.Fatalf("grace login, want %v left: %v", left, ev)
		}
	}
	ev := e.evaluate(t, "juve", lcLaptop, "")
	if ev["decision"] != "enroll" || ev["challenge"] != nil || lcObj(ev, "enrollment")["grace_logins_left"] != 0.0 {
		t.Fatalf("sixth login: %v", ev)
	}

	// The set-up window: a QR code, then the app's code.
	app, codes := e.enrollTOTP(t, "juve")
	if len(codes) != 10 {
		t.Errorf("backup codes: %v", codes)
	}
	for range 2 {
		ev = e.evaluate(t, "juve", lcLaptop, "")
		ch := lcObj(ev, "challenge")
		if ev["decision"] != "challenge" || ch["channel"] != "totp" || lcObj(ev, "enrollment")["required"] == true {
			t.Fatalf("login after setting up the app: %v", ev)
		}
		if r := e.verify(t, lcStr(ch, "id"), app.Code(t)); r.Status != 200 || r.Body["purpose"] != "login" {
			t.Fatalf("login with the app's code: %d %s", r.Status, r.Raw)
		}
	}

	lcWantErr(t, e.do(t, "POST", "/v1/users/juve/2fa/disable", nil), 403, "policy_requires_2fa")
	e.policy(t, map[string]any{"mode": "optional"})
	dis := lcObj(e.must(t, 201, "POST", "/v1/users/juve/2fa/disable", nil), "challenge")
	if r := e.verify(t, lcStr(dis, "id"), app.Code(t)); r.Status != 200 {
		t.Fatalf("turning off once optional: %d %s", r.Status, r.Raw)
	}
	if ev := e.evaluate(t, "juve", lcLaptop, ""); ev["decision"] != "allow" || lcObj(ev, "enrollment")["suggested"] != true {
		t.Errorf("login after turning off: %v", ev)
	}
}

// TestSeedRiskBasedSMS: a user with SMS 2FA and an established habit (one
// laptop at one office address) signs in there without a code; another
// computer at the same office, or the laptop in another country, gets a
// code on the registered phone, and that code signs in.
func TestSeedRiskBasedSMS(t *testing.T) {
	t.Parallel()
	geo := geoiptest.Write(t, geoiptest.DemoNetworks)
	e := lcStart(t, apptest.Options{Configure: func(c *config.Config) {
		c.GeoIP.CountryDB = geo.Country
		lcRoomyLimits(c)
	}})
	office := lcDevice{IP: "192.0.2.10", ID: "laptop-1", UA: lcLaptop.UA} // AU
	now := time.Now().UTC()
	var past []any
	for i := range 40 {
		past = append(past, map[string]any{"ip": office.IP, "user_agent": office.UA, "device_id": office.ID,
			"at": now.Add(-time.Duration(40-i) * 12 * time.Hour).Format(time.RFC3339)})
	}
	e.must(t, 201, "POST", "/v1/users/risa/history", map[string]any{"logins": past})
	phone := lcPhone(401)
	e.enrollSMS(t, "risa", phone)

	seen := len(e.Twilio.Messages())
	if ev := e.evaluate(t, "risa", office, ""); ev["decision"] != "allow" || ev["challenge"] != nil {
		t.Fatalf("familiar login: %v", ev)
	}
	if n := e.smsCount(phone, seen); n != 0 {
		t.Errorf("a familiar login sent %d SMS", n)
	}

	for _, tc := range []struct {
		name   string
		d      lcDevice
		signal string
	}{
		{"another computer at the office", lcDevice{IP: office.IP, ID: "desktop-2", UA: office.UA}, "new_device"},
		{"another computer and browser at the office", lcDevice{IP: office.IP, ID: "mac-3", UA: lcPhoneDevice.UA}, "new_device"},
		{"the laptop in another country", lcDevice{IP: "198.51.100.9", ID: office.ID, UA: office.UA}, "new_country"},
	} {
		seen := len(e.Twilio.Messages())
		ev := e.evaluate(t, "risa", tc.d, "")
		ch := lcObj(ev, "challenge")
		if ev["decision"] != "challenge" || ch["channel"] != "sms" || !slices.Contains(lcSignals(ev), tc.signal) {
			t.Errorf("%s: %v", tc.name, ev)
			continue
		}
		if r := e.verify(t, lcStr(ch, "id"), e.SMSCode(t, phone, seen)); r.Status != 200 || r.Body["purpose"] != "login" {
			t.Errorf("%s: the phone's code: %d %s", tc.name, r.Status, r.Raw)
		}
	}
}
