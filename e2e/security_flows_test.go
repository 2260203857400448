package e2e_test

// Regression tests of issue 12 (security hardening), paths 1 and 3, tried
// as an attacker over the real HTTP API: a new e-mail address of an
// enrolled user waits for proof of a current factor and of the new
// address; a challenge made for another state of the user's factors (a
// stale enrolment, a challenge from before an admin reset) acts on nothing.
//
// Helpers of this suite carry the sec prefix; it reuses the lc helpers.

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stepup-auth/stepup/internal/apptest"
)

// secMailsTo counts the mails to addr after the first seen ones.
func (e *lcEnv) secMailsTo(addr string, seen int) int {
	n := 0
	msgs := e.SMTP.Messages()
	for i := seen; i < len(msgs); i++ {
		if slices.Contains(msgs[i].To, addr) {
			n++
		}
	}
	return n
}

// secEvent returns the user's newest audit event of type typ, or nil.
func (e *lcEnv) secEvent(t testing.TB, user, typ string) map[string]any {
	t.Helper()
	for _, ev := range e.events(t, user) {
		if ev["type"] == typ {
			return ev
		}
	}
	return nil
}

// TestSecurityEmailSwapNeedsProof: whoever can call PUT /v1/users/{id}
// cannot redirect an enrolled user's security mail. The new address waits
// (202) until the current factor and then a code mailed to the new address
// are proven; then the old address is told, with the report link.
func TestSecurityEmailSwapNeedsProof(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})
	e.policy(t, map[string]any{"challenge": "every_login"})
	phone, oldAddr, evil := lcPhone(401), "vera@example.test", "mallory@evil.test"
	e.must(t, 200, "PUT", "/v1/users/vera", map[string]any{"email": oldAddr, "display_name": "Vera"})
	e.enrollSMS(t, "vera", phone)
	e.rememberDevice(t, "vera", phone, lcLaptop)

	// The attacker swaps the address: nothing but the other fields changes.
	seenSMS, seenMail := len(e.Twilio.Messages()), len(e.SMTP.Messages())
	r := e.do(t, "PUT", "/v1/users/vera", map[string]any{"email": evil, "display_name": "Vera M"})
	if r.Status != 202 {
		t.Fatalf("PUT of a new e-mail on an enrolled user: %d %s, want 202", r.Status, r.Raw)
	}
	ch := lcObj(r.Body, "challenge")
	if ch["purpose"] != "email_change_old" || ch["channel"] != "sms" || !strings.HasSuffix(lcStr(ch, "destination"), "401") {
		t.Fatalf("step one challenge: %s", r.Raw)
	}
	if p := lcObj(r.Body, "profile"); p["email"] != oldAddr || p["display_name"] != "Vera M" || r.Body["email_change_pending"] != true {
		t.Fatalf("202 body: %s, want the old address, the new name, a pending change", r.Raw)
	}
	code := e.SMSCode(t, phone, seenSMS) // step one's code goes to the current factor
	e.settle(t, lcStr(ch, "id"))
	u := e.user(t, "vera")
	if lcObj(u, "profile")["email"] != oldAddr || u["email_change_pending"] != true || u["remembered_devices"] != 1.0 {
		t.Fatalf("after the attacker's PUT: %v", u)
	}
	if n := e.secMailsTo(evil, seenMail); n != 0 {
		t.Fatalf("%d mails reached the attacker's address before any factor was proven", n)
	}
	if ev := e.secEvent(t, "vera", "email_changed"); ev != nil {
		t.Fatalf("email_changed recorded before the change: %v", ev)
	}
	// Guessing fails; the wrong code does not advance the flow.
	lcWantErr(t, e.verify(t, lcStr(ch, "id"), lcWrong(code)), 422, "invalid_code")

	// The legitimate user proves the phone: a code goes to the new address.
	res := e.verify(t, lcStr(ch, "id"), code)
	if res.Status != 200 || res.Body["purpose"] != "email_change_old" {
		t.Fatalf("step one: %d %s", res.Status, res.Raw)
	}
	next := lcObj(lcObj(res.Body, "result"), "next_challenge")
	if next["purpose"] != "email_change_new" || next["channel"] != "email" || next["destination"] != "m•••@evil.test" {
		t.Fatalf("step one's next challenge: %s", res.Raw)
	}
	if u := e.user(t, "vera"); lcObj(u, "profile")["email"] != oldAddr || u["email_change_pending"] != true {
		t.Fatalf("after step one: %v, want the old address still", u)
	}
	newCode := lcSixDigits.FindString(e.mailTo(t, evil, seenMail, "verification code").Text)
	if newCode == "" {
		t.Fatal("no code in the mail to the new address")
	}
	// The code of the new address is no backup for the phone's, and a
	// backup code proves no new address.
	lcWantErr(t, e.verify(t, lcStr(next, "id"), lcWrong(newCode)), 422, "invalid_code")

	seenMail = len(e.SMTP.Messages())
	res = e.verify(t, lcStr(next, "id"), newCode)
	if res.Status != 200 || res.Body["purpose"] != "email_change_new" {
		t.Fatalf("step two: %d %s", res.Status, res.Raw)
	}
	u = e.user(t, "vera")
	if lcObj(u, "profile")["email"] != evil || u["email_change_pending"] != false || u["remembered_devices"] != 0.0 || u["enrolled"] != true {
		t.Errorf("after the change: %v, want the new address, nothing pending, no remembered device", u)
	}
	ev := e.secEvent(t, "vera", "email_changed")
	if ev == nil {
		t.Fatal("no email_changed event")
	}
	d := lcObj(ev, "details")
	if d["old_email"] != "v•••@example.test" || d["new_email"] != "m•••@evil.test" || strings.Contains(fmt.Sprint(ev), oldAddr) || strings.Contains(fmt.Sprint(ev), evil) {
		t.Errorf("email_changed details: %v, want masked addresses", d)
	}
	if e.secEvent(t, "vera", "devices_forgotten") == nil {
		t.Error("remembered devices forgotten without a devices_forgotten event")
	}
	// The old address is told, with the "this wasn't me" link.
	m := e.mailTo(t, oldAddr, seenMail, "e-mail address for security notices was changed")
	if !strings.Contains(m.Text, "/v1/report/") || !strings.Contains(m.Text, "m•••@evil.test") {
		t.Errorf("notice to the old address: %q", m.Text)
	}
	e.mailTo(t, evil, seenMail, "e-mail address for security notices was changed")

	// The same address again is a no-op; bad input gets clear errors.
	if r := e.do(t, "PUT", "/v1/users/vera", map[string]any{"email": evil}); r.Status != 200 || r.Body["email_change_pending"] != false {
		t.Errorf("PUT of the current address: %d %s, want 200 and nothing pending", r.Status, r.Raw)
	}
	lcWantErr(t, e.do(t, "PUT", "/v1/users/vera", map[string]any{"email": "not-an-address"}), 400, "validation_failed")
	lcWantErr(t, e.do(t, "PUT", "/v1/users/vera", map[string]any{"email": ""}), 422, "email_required")
	if u := e.user(t, "vera"); lcObj(u, "profile")["email"] != evil {
		t.Errorf("address after refused PUTs: %v", u)
	}
}

// TestSecurityEmailChangeReplacedAndBackup: a second change replaces the
// first (whose challenge is then cancelled); a backup code proves step one.
func TestSecurityEmailChangeReplacedAndBackup(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})
	phone := lcPhone(411)
	e.must(t, 200, "PUT", "/v1/users/wade", map[string]any{"email": "wade@example.test"})
	codes := e.enrollSMS(t, "wade", phone)

	seen := len(e.Twilio.Messages())
	first := lcObj(e.must(t, 202, "PUT", "/v1/users/wade", map[string]any{"email": "one@example.test"}), "challenge")
	code := e.SMSCode(t, phone, seen)
	e.settle(t, lcStr(first, "id"))
	second := lcObj(e.must(t, 202, "PUT", "/v1/users/wade", map[string]any{"email": "two@example.test"}), "challenge")
	lcWantErr(t, e.verify(t, lcStr(first, "id"), code), 410, "challenge_cancelled")

	res := e.verify(t, lcStr(second, "id"), codes[0])
	if res.Status != 200 || lcObj(lcObj(res.Body, "result"), "next_challenge")["destination"] != "t•••@example.test" {
		t.Fatalf("step one with a backup code: %d %s", res.Status, res.Raw)
	}
	// The second step wants the mailed code: a backup code is no proof of
	// the new address.
	next := lcObj(lcObj(res.Body, "result"), "next_challenge")
	lcWantErr(t, e.verify(t, lcStr(next, "id"), codes[1]), 422, "invalid_code")
	if u := e.user(t, "wade"); lcObj(u, "profile")["email"] != "wade@example.test" {
		t.Errorf("address before step two: %v", u)
	}
}

// TestSecurityEmailChangeWithoutFactor: a user without 2FA has nothing to
// prove with; the address changes at once, recorded, and the old one is
// told.
func TestSecurityEmailChangeWithoutFactor(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})
	e.must(t, 200, "PUT", "/v1/users/xena", map[string]any{"email": "xena@example.test"})
	if ev := e.secEvent(t, "xena", "email_changed"); ev != nil {
		t.Errorf("the first address recorded as a change: %v", ev)
	}
	seen := len(e.SMTP.Messages())
	u := e.must(t, 200, "PUT", "/v1/users/xena", map[string]any{"email": "xena2@example.test"})
	if lcObj(u, "profile")["email"] != "xena2@example.test" || u["email_change_pending"] != false {
		t.Fatalf("after the change: %v", u)
	}
	ev := e.secEvent(t, "xena", "email_changed")
	if ev == nil || lcObj(ev, "details")["old_email"] != "x•••@example.test" {
		t.Fatalf("email_changed of a user without 2FA: %v", ev)
	}
	e.mailTo(t, "xena@example.test", seen, "e-mail address for security notices was changed")
}

// TestSecurityStaleEnrolment: the attacker starts an SMS enrolment to his
// phone, the victim enrols hers, the attacker then verifies his old
// challenge: it is stale (409) and closed, the victim's number stays.
func TestSecurityStaleEnrolment(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})
	evilPhone, herPhone := lcPhone(421), lcPhone(422)
	e.must(t, 200, "PUT", "/v1/users/yara", map[string]any{"email": "yara@example.test"})

	seen := len(e.Twilio.Messages())
	st := e.must(t, 201, "POST", "/v1/users/yara/sms", map[string]any{"phone": evilPhone})
	evilCh := lcStr(lcObj(st, "challenge"), "id")
	evilCode := e.SMSCode(t, evilPhone, seen)

	e.enrollSMS(t, "yara", herPhone)

	r := e.verify(t, evilCh, evilCode)
	lcWantErr(t, r, 409, "challenge_stale")
	if strings.Contains(string(r.Raw), evilCode) || strings.Contains(string(r.Raw), evilPhone) {
		t.Errorf("the stale answer leaks a secret: %s", r.Raw)
	}
	e.waitChallengeStatus(t, evilCh, "cancelled")
	lcWantErr(t, e.verify(t, evilCh, evilCode), 410, "challenge_cancelled")
	u := e.user(t, "yara")
	lcCheckPhone(t, u, herPhone)
	if ev := e.secEvent(t, "yara", "sms_enrolled"); ev == nil || !strings.HasSuffix(lcStr(lcObj(ev, "details"), "phone"), "422") {
		t.Errorf("newest sms_enrolled: %v, want the victim's number", ev)
	}

	// Her login challenge still works as always.
	seen = len(e.Twilio.Messages())
	lch := e.loginChallenge(t, "yara", lcLaptop)
	if r := e.verify(t, lcStr(lch, "id"), e.SMSCode(t, herPhone, seen)); r.Status != 200 || r.Body["purpose"] != "login" {
		t.Errorf("login after the refused stale enrolment: %d %s", r.Status, r.Raw)
	}
}

// TestSecurityResetCancelsChallenges: an admin reset (and a disabling)
// closes every open challenge of the user, so a code obtained before it
// acts on nothing after it.
func TestSecurityResetCancelsChallenges(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})
	phone := lcPhone(431)
	e.must(t, 200, "PUT", "/v1/users/zoe", map[string]any{"email": "zoe@example.test"})
	e.enrollSMS(t, "zoe", phone)

	seen := len(e.Twilio.Messages())
	bc := lcObj(e.must(t, 201, "POST", "/v1/users/zoe/backup-codes", nil), "challenge")
	code := e.SMSCode(t, phone, seen)
	e.settle(t, lcStr(bc, "id"))
	e.Must(t, 200, "POST", "/v1/admin/users/zoe/reset", e.Mgr, map[string]any{"reason": "lost phone, ticket 7"})
	e.waitChallengeStatus(t, lcStr(bc, "id"), "cancelled")
	lcWantErr(t, e.verify(t, lcStr(bc, "id"), code), 410, "challenge_cancelled")
	if u := e.user(t, "zoe"); u["enrolled"] != false || u["backup_codes_left"] != 0.0 {
		t.Errorf("after the reset and a late verification: %v", u)
	}

	// Disabling closes the user's other open challenges too.
	e.enrollSMS(t, "zoe", phone)
	seen = len(e.Twilio.Messages())
	lch := e.loginChallenge(t, "zoe", lcLaptop)
	loginCode := e.SMSCode(t, phone, seen)
	seen = len(e.Twilio.Messages())
	dis := lcObj(e.must(t, 201, "POST", "/v1/users/zoe/2fa/disable", nil), "challenge")
	if r := e.verify(t, lcStr(dis, "id"), e.SMSCode(t, phone, seen)); r.Status != 200 {
		t.Fatalf("disable: %d %s", r.Status, r.Raw)
	}
	e.waitChallengeStatus(t, lcStr(lch, "id"), "cancelled")
	lcWantErr(t, e.verify(t, lcStr(lch, "id"), loginCode), 410, "challenge_cancelled")
}
