package api_test

import (
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/stepup-auth/stepup/internal/apptest"
	"github.com/stepup-auth/stepup/internal/smtptest"
)

// These tests walk the whole product over HTTP; besides what they assert,
// every answer is checked against api/openapi.yaml by the transport.

// TestLoginFlow: an SMS user is challenged, verifies, remembers the device,
// uses a backup code, and kills a challenge with wrong codes.
func TestLoginFlow(t *testing.T) {
	s := start(t, apptest.Options{})
	tn := s.tenant(t, "acme")
	app := tn.App
	// Every login is challenged, so that learning from the verified ones
	// does not let the later ones through.
	s.must(t, 200, "PUT", "/v1/admin/policy", tn.Manager, map[string]any{"challenge": "every_login"})

	u := s.must(t, 200, "PUT", "/v1/users/alice", app, map[string]any{
		"email": "alice@example.test", "display_name": "Alice", "locale": "en-GB", "time_zone": "Europe/London"})
	if u["user_id"] != "alice" || u["enrolled"] != false || u["mode"] != "optional" || len(u["factors"].([]any)) != 0 ||
		str(obj(u, "profile"), "display_name") != "Alice" {
		t.Errorf("new user: %v", u)
	}

	ev := s.must(t, 200, "POST", "/v1/logins/evaluate", app, map[string]any{"user_id": "zoe", "ip": testIP, "user_agent": testUA})
	if ev["decision"] != "allow" || obj(ev, "enrollment")["suggested"] != true || obj(ev, "enrollment")["required"] != false || ev["challenge"] != nil {
		t.Errorf("evaluate without 2FA: %v", ev)
	}

	codes := s.enrollSMS(t, app, "alice", phone1)
	if len(codes) != 10 || len(slices.Compact(slices.Sorted(slices.Values(codes)))) != 10 {
		t.Errorf("backup codes %v, want 10 distinct", codes)
	}
	u = s.must(t, 200, "GET", "/v1/users/alice", app, nil)
	f := u["factors"].([]any)
	if u["enrolled"] != true || len(f) != 1 || u["backup_codes_left"] != 10.0 {
		t.Fatalf("enrolled user: %v", u)
	}
	if d := str(f[0].(map[string]any), "destination"); strings.Contains(d, "491570156") || !strings.HasSuffix(d, "156") {
		t.Errorf("factor destination %q is not masked", d)
	}

	// Challenged at cold start; the code is the one sent.
	seen := len(s.Twilio.Messages())
	ev = s.must(t, 200, "POST", "/v1/logins/evaluate", app, map[string]any{
		"user_id": "alice", "ip": testIP, "user_agent": testUA, "device_id": "laptop"})
	ch := obj(ev, "challenge")
	if ev["decision"] != "challenge" || ch["purpose"] != "login" || ch["channel"] != "sms" || ch["status"] != "pending" ||
		ch["attempts_left"] != 5.0 || !slices.Equal(ch["available_channels"].([]any), []any{"sms"}) {
		t.Fatalf("challenge: %v", ev)
	}
	id := str(ch, "id")
	code := s.SMSCode(t, phone1, seen)
	if got := s.must(t, 200, "GET", "/v1/challenges/"+id, app, nil); got["status"] != "pending" || got["id"] != id {
		t.Errorf("get challenge: %v", got)
	}

	r := s.do(t, "POST", "/v1/challenges/"+id+"/resend", app, nil)
	wantError(t, r, 429, "rate_limited", "")
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 || float64(ra) != errField(r, "retry_after") {
		t.Errorf("Retry-After %q, retry_after %v", r.Header.Get("Retry-After"), errField(r, "retry_after"))
	}

	r = s.do(t, "POST", "/v1/challenges/"+id+"/verify", app, map[string]any{"code": wrong(code)})
	wantError(t, r, 422, "invalid_code", "")
	if errField(r, "attempts_left") != 4.0 {
		t.Errorf("attempts_left %v, want 4", errField(r, "attempts_left"))
	}
	res := s.must(t, 200, "POST", "/v1/challenges/"+id+"/verify", app, map[string]any{"code": code, "remember_device": true, "ip": testIP})
	token := str(obj(res, "result"), "device_token")
	if res["verified"] != true || res["purpose"] != "login" || obj(res, "result")["login_id"] != ev["login_id"] || token == "" {
		t.Fatalf("verify: %v", res)
	}
	wantError(t, s.do(t, "POST", "/v1/challenges/"+id+"/verify", app, map[string]any{"code": code}), 409, "challenge_used", "")

	// The remembered device skips the challenge.
	ev = s.must(t, 200, "POST", "/v1/logins/evaluate", app, map[string]any{
		"user_id": "alice", "ip": testIP, "user_agent": testUA, "device_id": "laptop", "device_token": token})
	if ev["decision"] != "allow" || !slices.Contains(signalNames(ev), "remembered_device") {
		t.Errorf("remembered device: %v", ev)
	}
	devs := s.must(t, 200, "GET", "/v1/users/alice/devices", app, nil)["devices"].([]any)
	if len(devs) != 1 || !strings.HasPrefix(str(devs[0].(map[string]any), "id"), "dv_") {
		t.Fatalf("devices: %v", devs)
	}
	if n := s.must(t, 200, "DELETE", "/v1/users/alice/devices/"+str(devs[0].(map[string]any), "id"), app, nil)["forgotten"]; n != 1.0 {
		t.Errorf("forgot %v devices, want 1", n)
	}
	if n := len(s.must(t, 200, "GET", "/v1/users/alice/devices", app, nil)["devices"].([]any)); n != 0 {
		t.Errorf("%d devices after forgetting", n)
	}
	s.must(t, 200, "POST", "/v1/users/alice/events/password-changed", app, nil)
	s.must(t, 200, "POST", "/v1/users/alice/events/signed-out-everywhere", app, map[string]any{"ip": testIP, "user_agent": testUA})
	s.must(t, 200, "DELETE", "/v1/users/alice/devices", app, nil)

	// A backup code works once, wherever the SMS code does.
	id = s.loginChallenge(t, app, "alice")
	res = s.must(t, 200, "POST", "/v1/challenges/"+id+"/verify", app, map[string]any{"code": codes[0]})
	if obj(res, "result")["backup_codes_left"] != 9.0 {
		t.Errorf("backup code: %v", res)
	}
	id = s.loginChallenge(t, app, "alice")
	wantError(t, s.do(t, "POST", "/v1/challenges/"+id+"/verify", app, map[string]any{"code": codes[0]}), 422, "invalid_code", "")

	// The fifth wrong code kills the challenge.
	for left := 3; left >= 1; left-- {
		r := s.do(t, "POST", "/v1/challenges/"+id+"/verify", app, map[string]any{"code": "00000" + strconv.Itoa(left)})
		wantError(t, r, 422, "invalid_code", "")
		if errField(r, "attempts_left") != float64(left) {
			t.Errorf("attempts_left %v, want %d", errField(r, "attempts_left"), left)
		}
	}
	wantError(t, s.do(t, "POST", "/v1/challenges/"+id+"/verify", app, map[string]any{"code": "000009"}), 423, "too_many_attempts", "")
	wantError(t, s.do(t, "POST", "/v1/challenges/"+id+"/verify", app, map[string]any{"code": codes[1]}), 423, "too_many_attempts", "")
	if got := s.must(t, 200, "GET", "/v1/challenges/"+id, app, nil); got["status"] != "locked" || got["attempts_left"] != 0.0 {
		t.Errorf("locked challenge: %v", got)
	}
	wantError(t, s.do(t, "POST", "/v1/challenges/"+id+"/resend", app, map[string]any{}), 423, "too_many_attempts", "")

	// Wrong codes and failed passwords raise the next score.
	s.must(t, 204, "POST", "/v1/logins/failed", app, map[string]any{"user_id": "alice", "ip": testIP, "user_agent": testUA})
}

// wrong returns a code that is not code.
func wrong(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

func signalNames(ev map[string]any) []string {
	var names []string
	for _, s := range obj(ev, "risk")["signals"].([]any) {
		names = append(names, str(s.(map[string]any), "name"))
	}
	return names
}

// TestFactors: a second factor needs a step-up on the first; the login
// challenge prefers the authenticator app and can switch; backup codes are
// regenerated; 2FA is disabled unless the policy requires it.
func TestFactors(t *testing.T) {
	s := start(t, apptest.Options{})
	tn := s.tenant(t, "acme")
	app := tn.App

	// A first factor needs no step-up: the secret comes at once.
	st := s.must(t, 201, "POST", "/v1/users/tia/totp", app, nil)
	ch := obj(st, "challenge")
	if st["step_up"] != nil || ch["purpose"] != "enroll_totp" || ch["channel"] != "totp" || str(st, "secret") == "" ||
		!strings.HasPrefix(str(st, "otpauth_uri"), "otpauth://totp/") || str(st, "qr_png") == "" {
		t.Fatalf("first TOTP: %v", st)
	}
	otp, err := totp.GenerateCode(str(st, "secret"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, s.do(t, "POST", "/v1/challenges/"+str(ch, "id")+"/verify", app, map[string]any{"code": wrong(otp)}), 422, "invalid_code", "")
	res := s.must(t, 200, "POST", "/v1/challenges/"+str(ch, "id")+"/verify", app, map[string]any{"code": otp})
	if len(obj(res, "result")["backup_codes"].([]any)) != 10 {
		t.Errorf("first TOTP verify: %v", res)
	}

	codes := s.enrollSMS(t, app, "bob", phone2)

	// TOTP: step up on the phone, then the app's code.
	seen := len(s.Twilio.Messages())
	st = s.must(t, 201, "POST", "/v1/users/bob/totp", app, map[string]any{"ip": testIP})
	if st["step_up"] != true || obj(st, "challenge")["purpose"] != "step_up" || st["secret"] != nil {
		t.Fatalf("TOTP for an enrolled user: %v", st)
	}
	res = s.must(t, 200, "POST", "/v1/challenges/"+str(obj(st, "challenge"), "id")+"/verify", app,
		map[string]any{"code": s.SMSCode(t, phone2, seen)})
	out := obj(res, "result")
	next := obj(out, "next_challenge")
	secret := str(out, "secret")
	if res["purpose"] != "step_up" || next["purpose"] != "enroll_totp" || next["channel"] != "totp" || secret == "" ||
		!strings.HasPrefix(str(out, "otpauth_uri"), "otpauth://totp/") || str(out, "qr_png") == "" {
		t.Fatalf("step-up result: %v", res)
	}
	otp, err = totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res = s.must(t, 200, "POST", "/v1/challenges/"+str(next, "id")+"/verify", app, map[string]any{"code": otp})
	if res["purpose"] != "enroll_totp" || obj(res, "result")["backup_codes"] != nil {
		t.Errorf("TOTP verify (the user keeps the backup codes): %v", res)
	}
	var channels []string
	for _, f := range s.must(t, 200, "GET", "/v1/users/bob", app, nil)["factors"].([]any) {
		channels = append(channels, str(f.(map[string]any), "channel"))
	}
	if !slices.Equal(channels, []string{"totp", "sms"}) {
		t.Errorf("factors %v", channels)
	}

	// The login prefers TOTP; nothing to resend; switch to SMS.
	ev := s.must(t, 200, "POST", "/v1/logins/evaluate", app, map[string]any{"user_id": "bob", "ip": testIP, "user_agent": testUA})
	ch = obj(ev, "challenge")
	if ch["channel"] != "totp" || !slices.Equal(ch["available_channels"].([]any), []any{"totp", "sms"}) {
		t.Fatalf("login challenge: %v", ev)
	}
	id := str(ch, "id")
	wantError(t, s.do(t, "POST", "/v1/challenges/"+id+"/resend", app, nil), 422, "nothing_to_send", "")
	r := s.do(t, "POST", "/v1/challenges/"+id+"/switch", app, map[string]any{"channel": "email"})
	wantError(t, r, 422, "no_factor", "")
	seen = len(s.Twilio.Messages())
	sw := s.must(t, 200, "POST", "/v1/challenges/"+id+"/switch", app, map[string]any{"channel": "sms"})
	if sw["channel"] != "sms" || sw["purpose"] != "login" || sw["id"] == id {
		t.Fatalf("switch: %v", sw)
	}
	if old := s.must(t, 200, "GET", "/v1/challenges/"+id, app, nil); old["status"] != "cancelled" {
		t.Errorf("switched-from challenge: %v", old)
	}
	wantError(t, s.do(t, "POST", "/v1/challenges/"+id+"/verify", app, map[string]any{"code": "123456"}), 410, "challenge_cancelled", "")
	res = s.must(t, 200, "POST", "/v1/challenges/"+str(sw, "id")+"/verify", app, map[string]any{"code": s.SMSCode(t, phone2, seen)})
	if obj(res, "result")["login_id"] != ev["login_id"] {
		t.Errorf("verify after switch: %v", res)
	}
	wantError(t, s.do(t, "POST", "/v1/challenges/"+str(sw, "id")+"/switch", app, map[string]any{"channel": "totp"}), 409, "challenge_used", "")

	// New backup codes, proven with an old one.
	st = s.must(t, 201, "POST", "/v1/users/bob/backup-codes", app, nil)
	if obj(st, "challenge")["purpose"] != "backup_codes" {
		t.Fatalf("backup codes: %v", st)
	}
	res = s.must(t, 200, "POST", "/v1/challenges/"+str(obj(st, "challenge"), "id")+"/verify", app, map[string]any{"code": codes[0]})
	fresh := obj(res, "result")["backup_codes"].([]any)
	if len(fresh) != 10 {
		t.Fatalf("regenerated codes: %v", res)
	}
	id = s.must(t, 201, "POST", "/v1/users/bob/backup-codes", app, nil)["challenge"].(map[string]any)["id"].(string)
	wantError(t, s.do(t, "POST", "/v1/challenges/"+id+"/verify", app, map[string]any{"code": codes[1]}), 422, "invalid_code", "")

	// Disable: refused while required, then done with a backup code.
	s.must(t, 200, "PUT", "/v1/admin/policy", tn.Manager, map[string]any{"mode": "required"})
	wantError(t, s.do(t, "POST", "/v1/users/bob/2fa/disable", app, nil), 403, "policy_requires_2fa", "")
	s.must(t, 200, "PUT", "/v1/admin/policy", tn.Manager, map[string]any{"mode": "optional"})
	st = s.must(t, 201, "POST", "/v1/users/bob/2fa/disable", app, map[string]any{"ip": testIP, "user_agent": testUA})
	res = s.must(t, 200, "POST", "/v1/challenges/"+str(obj(st, "challenge"), "id")+"/verify", app, map[string]any{"code": fresh[0]})
	if res["purpose"] != "disable" {
		t.Errorf("disable: %v", res)
	}
	if u := s.must(t, 200, "GET", "/v1/users/bob", app, nil); u["enrolled"] != false || u["backup_codes_left"] != 0.0 {
		t.Errorf("after disable: %v", u)
	}
}

// TestPhoneChange: dual confirmation, old number then new.
func TestPhoneChange(t *testing.T) {
	const oldPhone, newPhone = "+61491570158", "+61491570159"
	s := start(t, apptest.Options{})
	app := s.tenant(t, "acme").App
	s.enrollSMS(t, app, "carol", oldPhone)
	wantError(t, s.do(t, "POST", "/v1/users/carol/sms", app, map[string]any{"phone": newPhone}), 409, "already_enrolled", "")
	wantError(t, s.do(t, "POST", "/v1/users/carol/phone-change", app, map[string]any{"new_phone": oldPhone}), 422, "phone_unchanged", "")

	seen := len(s.Twilio.Messages())
	st := s.must(t, 201, "POST", "/v1/users/carol/phone-change", app, map[string]any{"new_phone": newPhone})
	ch := obj(st, "challenge")
	if ch["purpose"] != "phone_change_old" || !strings.HasSuffix(str(ch, "destination"), "158") {
		t.Fatalf("phone change: %v", st)
	}
	if u := s.must(t, 200, "GET", "/v1/users/carol", app, nil); u["phone_change_pending"] != true {
		t.Errorf("pending change not shown: %v", u)
	}
	res := s.must(t, 200, "POST", "/v1/challenges/"+str(ch, "id")+"/verify", app, map[string]any{"code": s.SMSCode(t, oldPhone, seen)})
	next := obj(obj(res, "result"), "next_challenge")
	if next["purpose"] != "phone_change_new" || !strings.HasSuffix(str(next, "destination"), "159") {
		t.Fatalf("first step: %v", res)
	}
	res = s.must(t, 200, "POST", "/v1/challenges/"+str(next, "id")+"/verify", app, map[string]any{"code": s.SMSCode(t, newPhone, seen)})
	if res["purpose"] != "phone_change_new" {
		t.Errorf("second step: %v", res)
	}
	u := s.must(t, 200, "GET", "/v1/users/carol", app, nil)
	if d := str(u["factors"].([]any)[0].(map[string]any), "destination"); !strings.HasSuffix(d, "159") || u["phone_change_pending"] != false {
		t.Errorf("after the change: %v", u)
	}
}

// TestEmailFactor: a user without a mobile gets codes by e-mail.
func TestEmailFactor(t *testing.T) {
	s := start(t, apptest.Options{})
	app := s.tenant(t, "acme").App
	s.must(t, 200, "PUT", "/v1/users/erin", app, map[string]any{"email": "erin@example.test"})
	seen := len(s.SMTP.Messages())
	st := s.must(t, 201, "POST", "/v1/users/erin/email-factor", app, nil)
	ch := obj(st, "challenge")
	if ch["channel"] != "email" || ch["destination"] != "e•••@example.test" {
		t.Fatalf("e-mail enrolment: %v", st)
	}
	m := mailTo(t, s, "erin@example.test", seen, "verification code")
	code := regexp.MustCompile(`\b\d{6}\b`).FindString(m.Text)
	res := s.must(t, 200, "POST", "/v1/challenges/"+str(ch, "id")+"/verify", app, map[string]any{"code": code})
	if res["purpose"] != "enroll_email" || len(obj(res, "result")["backup_codes"].([]any)) != 10 {
		t.Errorf("verify: %v", res)
	}
	wantError(t, s.do(t, "POST", "/v1/users/erin/email-factor", app, nil), 409, "already_enrolled", "")
}

// TestDisableAllMailsManagersOnce: a disable-all tells each affected user,
// and each manager address of their policies hears of it once, not once
// per user.
func TestDisableAllMailsManagersOnce(t *testing.T) {
	s := start(t, apptest.Options{})
	tn := s.tenant(t, "acme")
	app, mgr := tn.App, tn.Manager
	s.must(t, 200, "PUT", "/v1/admin/policy", mgr, map[string]any{
		"manager_emails": []string{"security@example.test"},
		"groups":         map[string]any{"staff": map[string]any{"manager_emails": []string{"lead@example.test"}}},
	})
	users := []struct{ id, group, phone string }{
		{"ann", "", "+61491570110"}, {"bea", "", "+61491570111"}, {"cid", "staff", "+61491570112"},
	}
	for _, u := range users {
		s.must(t, 200, "PUT", "/v1/users/"+u.id, app, map[string]any{"email": u.id + "@example.test", "group": u.group})
		s.enrollSMS(t, app, u.id, u.phone)
	}
	seen := len(s.SMTP.Messages())
	if n := s.must(t, 200, "POST", "/v1/admin/2fa/disable-all", mgr, map[string]any{"reason": "incident"})["reset"]; n != 3.0 {
		t.Fatalf("disable-all reset %v users, want 3", n)
	}
	for _, u := range users {
		mailTo(t, s, u.id+"@example.test", seen, "reset")
	}
	for _, to := range []string{"security@example.test", "lead@example.test"} {
		m := mailTo(t, s, to, seen, "turned off")
		if !strings.Contains(m.Text, "3 affected") || !strings.Contains(m.Text, "incident") {
			t.Errorf("managers' mail to %s:\n%s", to, m.Text)
		}
	}
	time.Sleep(300 * time.Millisecond) // a mail per user would be queued before the summary
	for _, to := range []string{"security@example.test", "lead@example.test"} {
		n := 0
		for _, m := range s.SMTP.Messages()[seen:] {
			if slices.Contains(m.To, to) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s got %d mails about the disable-all, want 1", to, n)
		}
	}
	evs := s.must(t, 200, "GET", "/v1/admin/events?type=2fa_disabled", mgr, nil)["events"].([]any)
	if len(evs) != 1 || obj(evs[0].(map[string]any), "details")["count"] != "3" {
		t.Errorf("audit log of the disable-all: %v", evs)
	}
}

// TestGroupMoveThatDisarmsMails: an enrolled user moved into a group whose
// sign-ins ask for no code is told, as when the tenant switches 2FA off;
// a move that leaves him protected is not mailed.
func TestGroupMoveThatDisarmsMails(t *testing.T) {
	s := start(t, apptest.Options{})
	tn := s.tenant(t, "acme")
	app, mgr := tn.App, tn.Manager
	s.must(t, 200, "PUT", "/v1/admin/policy", mgr, map[string]any{"groups": map[string]any{
		"contractors": map[string]any{"mode": "off"},
		"pilot":       map[string]any{"enforcement": "monitor"},
		"staff":       map[string]any{"mode": "required"},
	}})
	s.must(t, 200, "PUT", "/v1/users/fay", app, map[string]any{"email": "fay@example.test"})
	s.enrollSMS(t, app, "fay", "+61491570113")
	s.must(t, 200, "PUT", "/v1/users/gus", app, map[string]any{"email": "gus@example.test"}) // not enrolled
	mailTo(t, s, "fay@example.test", 0, "turned on")

	seen := len(s.SMTP.Messages())
	s.must(t, 200, "PUT", "/v1/users/fay", app, map[string]any{"group": "staff"})
	s.must(t, 200, "PUT", "/v1/users/gus", app, map[string]any{"group": "contractors"})
	s.must(t, 200, "PUT", "/v1/users/fay", app, map[string]any{"group": "contractors"})
	m := mailTo(t, s, "fay@example.test", seen, "for your account")
	if !strings.Contains(m.Text, "moved your account to the group contractors") {
		t.Errorf("fay's mail:\n%s", m.Text)
	}
	s.must(t, 200, "PUT", "/v1/users/fay", app, map[string]any{"group": "pilot"}) // from off to monitor: still no code
	s.must(t, 200, "PUT", "/v1/users/fay", app, map[string]any{"group": ""})
	s.must(t, 200, "PUT", "/v1/users/fay", app, map[string]any{"group": "pilot"})
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		n := 0
		for _, m := range s.SMTP.Messages()[seen:] {
			if slices.Contains(m.To, "fay@example.test") {
				n++
			}
		}
		if n >= 2 {
			break
		}
	}
	time.Sleep(300 * time.Millisecond) // a mail too many would be queued with the moves
	var got []string
	for _, m := range s.SMTP.Messages()[seen:] {
		got = append(got, strings.Join(m.To, ",")+": "+m.Subject)
	}
	if len(got) != 2 || !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, "fay@") }) {
		t.Errorf("mails after the moves: %q, want two to fay (contractors, then pilot) and none to gus", got)
	}
	evs := s.must(t, 200, "GET", "/v1/admin/events?type=tenant_mode_off&user_id=fay", mgr, nil)["events"].([]any)
	if len(evs) != 2 {
		t.Errorf("fay's tenant_mode_off events: %v", evs)
	}
}

// mailTo waits for a mail to addr, after the seen first ones, whose subject
// or text holds want.
func mailTo(t *testing.T, s server, addr string, seen int, want string) smtptest.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		msgs := s.SMTP.Messages()
		for i := len(msgs) - 1; i >= seen && i >= 0; i-- {
			if slices.Contains(msgs[i].To, addr) && (strings.Contains(msgs[i].Subject, want) || strings.Contains(msgs[i].Text, want)) {
				return msgs[i]
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no mail to %s about %q within 10s", addr, want)
	return smtptest.Message{}
}

// TestAdmin: policy with groups, grace logins, admin reset, disable-all and
// the audit log with paging.
func TestAdmin(t *testing.T) {
	s := start(t, apptest.Options{})
	tn := s.tenant(t, "acme")
	app, mgr := tn.App, tn.Manager

	pol := s.must(t, 200, "GET", "/v1/admin/policy", mgr, nil)
	if pol["mode"] != "optional" || pol["challenge"] != "risk_based" || pol["grace_logins"] != 5.0 || pol["remember_device_days"] != 30.0 {
		t.Errorf("default policy: %v", pol)
	}
	pol = s.must(t, 200, "PUT", "/v1/admin/policy", mgr, map[string]any{
		"manager_emails": []string{"security@example.test"},
		"groups":         map[string]any{"staff": map[string]any{"mode": "required", "grace_logins": 2}},
	})
	if eff := obj(obj(pol, "effective_groups"), "staff"); eff["mode"] != "required" || eff["grace_logins"] != 2.0 || eff["challenge"] != "risk_based" {
		t.Errorf("effective staff policy: %v", pol)
	}
	// A GET answer sent back as is changes nothing.
	s.must(t, 200, "PUT", "/v1/admin/policy", mgr, s.must(t, 200, "GET", "/v1/admin/policy", mgr, nil))

	u := s.must(t, 200, "PUT", "/v1/users/sam", app, map[string]any{"group": "staff"})
	if u["group"] != "staff" || u["mode"] != "required" || u["grace_logins_left"] != 2.0 {
		t.Errorf("staff user: %v", u)
	}
	ev := s.must(t, 200, "POST", "/v1/logins/evaluate", app, map[string]any{"user_id": "sam", "ip": testIP})
	if e := obj(ev, "enrollment"); ev["decision"] != "allow" || e["required"] != true || e["grace_logins_left"] != 1.0 {
		t.Errorf("grace login: %v", ev)
	}
	s.must(t, 200, "POST", "/v1/logins/evaluate", app, map[string]any{"user_id": "sam", "ip": testIP})
	ev = s.must(t, 200, "POST", "/v1/logins/evaluate", app, map[string]any{"user_id": "sam", "ip": testIP})
	if ev["decision"] != "enroll" || obj(ev, "enrollment")["grace_logins_left"] != 0.0 {
		t.Errorf("after the grace logins: %v", ev)
	}

	// Reset one user, then everyone.
	s.enrollSMS(t, app, "dan", "+61491570110")
	if u := s.must(t, 200, "GET", "/v1/admin/users/dan", mgr, nil); u["enrolled"] != true {
		t.Fatalf("admin view: %v", u)
	}
	if u := s.must(t, 200, "POST", "/v1/admin/users/dan/reset", mgr, map[string]any{"reason": "lost phone"}); u["enrolled"] != false {
		t.Errorf("reset: %v", u)
	}
	s.enrollSMS(t, app, "dan", "+61491570110")
	if n := s.must(t, 200, "POST", "/v1/admin/2fa/disable-all", mgr, map[string]any{"reason": "incident"})["reset"]; n != 1.0 {
		t.Errorf("disable-all reset %v users, want 1", n)
	}
	if n := s.must(t, 200, "POST", "/v1/admin/2fa/disable-all", mgr, map[string]any{"reason": "again", "group": "staff"})["reset"]; n != 0.0 {
		t.Errorf("disable-all of staff reset %v users, want 0", n)
	}

	// The audit log, newest first, filtered and paged.
	body := s.must(t, 200, "GET", "/v1/admin/events", mgr, nil)
	var types []string
	var last string
	for _, e := range body["events"].([]any) {
		e := e.(map[string]any)
		types = append(types, str(e, "type"))
		if last != "" && str(e, "at") > last {
			t.Errorf("events not newest first: %s after %s", e["at"], last)
		}
		last = str(e, "at")
	}
	for _, want := range []string{"policy_changed", "sms_enrolled", "admin_reset"} {
		if !slices.Contains(types, want) {
			t.Errorf("no %s event in %v", want, types)
		}
	}
	for _, e := range s.must(t, 200, "GET", "/v1/admin/events?user_id=dan&type=sms_enrolled", mgr, nil)["events"].([]any) {
		if e := e.(map[string]any); e["user_id"] != "dan" || e["type"] != "sms_enrolled" {
			t.Errorf("filtered events: %v", e)
		}
	}
	page := s.must(t, 200, "GET", "/v1/admin/events?limit=1", mgr, nil)
	cursor := str(page, "next_cursor")
	if len(page["events"].([]any)) != 1 || cursor == "" {
		t.Fatalf("first page: %v", page)
	}
	page2 := s.must(t, 200, "GET", "/v1/admin/events?limit=1&cursor="+cursor, mgr, nil)
	first := page["events"].([]any)[0].(map[string]any)
	if evs := page2["events"].([]any); len(evs) != 1 || evs[0].(map[string]any)["id"] == first["id"] {
		t.Errorf("second page: %v", page2)
	}
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if evs := s.must(t, 200, "GET", "/v1/admin/events?since="+future, mgr, nil)["events"].([]any); len(evs) != 0 {
		t.Errorf("events since the future: %v", evs)
	}
}

// TestHistoryAndErase: past logins are imported once; a user is erased.
func TestHistoryAndErase(t *testing.T) {
	s := start(t, apptest.Options{})
	app := s.tenant(t, "acme").App
	at := time.Now().Add(-48 * time.Hour).UTC().Format(time.RFC3339)
	logins := map[string]any{"logins": []any{
		map[string]any{"ip": testIP, "user_agent": testUA, "device_id": "laptop", "at": at},
		map[string]any{"ip": "2001:db8::1", "at": at},
	}}
	if n := s.must(t, 201, "POST", "/v1/users/fay/history", app, logins)["imported"]; n != 2.0 {
		t.Errorf("imported %v, want 2", n)
	}
	wantError(t, s.do(t, "POST", "/v1/users/fay/history", app, logins), 409, "history_exists", "")
	future := map[string]any{"logins": []any{map[string]any{"ip": testIP, "at": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}}
	wantError(t, s.do(t, "POST", "/v1/users/gus/history", app, future), 400, "validation_failed", "logins[0].at")

	s.must(t, 200, "PUT", "/v1/users/fay", app, map[string]any{"email": "fay@example.test"})
	s.must(t, 204, "DELETE", "/v1/users/fay", app, nil)
	wantError(t, s.do(t, "GET", "/v1/users/fay", app, nil), 404, "user_not_found", "")
	wantError(t, s.do(t, "DELETE", "/v1/users/fay", app, nil), 404, "user_not_found", "")
}

// TestReportLink follows the "this wasn't me" link of a notification mail.
func TestReportLink(t *testing.T) {
	s := start(t, apptest.Options{})
	tn := s.tenant(t, "acme")
	app := tn.App
	// Enrolled users without history are let in, unless they reported.
	s.must(t, 200, "PUT", "/v1/admin/policy", tn.Manager, map[string]any{"cold_start": "allow"})
	s.must(t, 200, "PUT", "/v1/users/hal", app, map[string]any{"email": "hal@example.test"})
	seen := len(s.SMTP.Messages())
	s.enrollSMS(t, app, "hal", "+61491570313")
	m := mailTo(t, s, "hal@example.test", seen, "/v1/report/")
	link := regexp.MustCompile(`https://stepup\.example\.test(/v1/report/[A-Za-z0-9_\-.]+)`).FindStringSubmatch(m.Text)
	if link == nil {
		t.Fatalf("no report link in %q", m.Text)
	}

	page := s.do(t, "GET", link[1], "", nil)
	if page.Status != 200 || !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(page.Raw), "<form") {
		t.Errorf("report page: %d %s", page.Status, page.Raw)
	}
	r := s.do(t, "POST", link[1], "", nil, "Accept", "application/json")
	if r.Status != 200 || r.Body["reported"] != true {
		t.Fatalf("report: %d %s", r.Status, r.Raw)
	}
	wantError(t, s.do(t, "POST", link[1], "", nil, "Accept", "application/json"), 410, "report_link_invalid", "")
	html := s.do(t, "POST", link[1], "", "", "Content-Type", "application/x-www-form-urlencoded")
	if html.Status != 410 || !strings.HasPrefix(html.Header.Get("Content-Type"), "text/html") {
		t.Errorf("used link as a form post: %d %s", html.Status, html.Raw)
	}

	// The next login is challenged whatever its score; the one after is
	// not.
	ev := s.must(t, 200, "POST", "/v1/logins/evaluate", app, map[string]any{"user_id": "hal", "ip": testIP, "user_agent": testUA})
	if ev["decision"] != "challenge" {
		t.Errorf("login after a report: %v", ev)
	}
}

// TestResendKeepsTheSMSQuota: a resend refused for the cooldown sends
// nothing, so it must not use up the user's or the number's hourly SMS
// quota (5 per number by default).
func TestResendKeepsTheSMSQuota(t *testing.T) {
	s := start(t, apptest.Options{})
	tn := s.tenant(t, "acme")
	s.must(t, 200, "PUT", "/v1/admin/policy", tn.Manager, map[string]any{"challenge": "every_login"})
	s.enrollSMS(t, tn.App, "ivy", phone1)    // SMS 1
	id := s.loginChallenge(t, tn.App, "ivy") // SMS 2
	for range 5 {
		r := s.do(t, "POST", "/v1/challenges/"+id+"/resend", tn.App, nil)
		wantError(t, r, 429, "rate_limited", "")
		if l := errField(r, "limit"); l != nil {
			t.Errorf("resend within the cooldown tripped the %v limit", l)
		}
	}
	s.loginChallenge(t, tn.App, "ivy") // SMS 3
}

// TestUserIDEscaping: user ids may hold any printable character; escaped in
// the path, they reach the engine whole.
func TestUserIDEscaping(t *testing.T) {
	s := start(t, apptest.Options{})
	app := s.tenant(t, "acme").App
	for _, id := range []string{"a/b", "mail@example.test", "x y", "ü-ß", "50%"} {
		t.Run(id, func(t *testing.T) {
			p := "/v1/users/" + url.PathEscape(id) // "/" becomes %2F
			if u := s.must(t, 200, "PUT", p, app, map[string]any{"display_name": "X"}); u["user_id"] != id {
				t.Errorf("user_id %v, want %q", u["user_id"], id)
			}
			if u := s.must(t, 200, "GET", p, app, nil); u["user_id"] != id {
				t.Errorf("user_id %v, want %q", u["user_id"], id)
			}
			s.must(t, 200, "GET", p+"/devices", app, nil)
			s.must(t, 204, "DELETE", p, app, nil)
		})
	}
}
