package e2e_test

// The acceptance suite of "Factor lifecycle" (SPEC.md section 5): every
// flow over the real HTTP API of a whole stepupd on a real redis-server,
// with codes read from the fake Twilio and the in-process SMTP server, and
// every action's effect checked through GET /v1/users/{id}.
//
// Helpers of this suite carry the lc prefix: other suites share package
// e2e_test.

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/internal/apptest"
	"github.com/stepup-auth/stepup/internal/smtptest"
	"github.com/stepup-auth/stepup/internal/twiliotest"
)

// Australia's fictional mobile range; each test uses its own numbers so the
// per-number SMS limits of one test never touch another's.
func lcPhone(n int) string { return fmt.Sprintf("+61491570%03d", n) }

// lcDevice is where a login comes from.
type lcDevice struct{ IP, UA, ID string }

var (
	lcLaptop = lcDevice{IP: "203.0.113.9", ID: "laptop-7f3a",
		UA: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"}
	lcPhoneDevice = lcDevice{IP: "198.51.100.7", ID: "phone-91c2",
		UA: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"}
)

// lcEnv is one stepupd with one tenant, spoken to with the tenant's app key
// unless a call says otherwise.
type lcEnv struct {
	*apptest.Env
	TenantID, App, Mgr string
}

// lcStart starts a stepupd (on a single redis-server unless o says
// otherwise) and creates the tenant "acme".
func lcStart(t *testing.T, o apptest.Options) *lcEnv {
	t.Helper()
	if o.Redis == "" {
		o.Redis = apptest.Single
	}
	env := apptest.New(t, o)
	id, app, mgr := env.Tenant(t, "acme")
	return &lcEnv{Env: env, TenantID: id, App: app, Mgr: mgr}
}

// lcRoomyLimits lifts the hourly SMS limits for tests that send many codes
// to one number; the limits are not what they test.
func lcRoomyLimits(c *config.Config) {
	c.Limits.SMSPerUserHour = 1000
	c.Limits.SMSPerNumberHour = 1000
}

func (e *lcEnv) do(t testing.TB, method, path string, body any) apptest.Response {
	t.Helper()
	return e.Do(t, method, path, e.App, body)
}

func (e *lcEnv) must(t testing.TB, status int, method, path string, body any) map[string]any {
	t.Helper()
	return e.Must(t, status, method, path, e.App, body)
}

// policy merges fields into the tenant's policy with the manager key.
func (e *lcEnv) policy(t testing.TB, fields map[string]any) map[string]any {
	t.Helper()
	return e.Must(t, 200, "PUT", "/v1/admin/policy", e.Mgr, fields)
}

// user is GET /v1/users/{id}, which must answer 200.
func (e *lcEnv) user(t testing.TB, id string) map[string]any {
	t.Helper()
	return e.must(t, 200, "GET", "/v1/users/"+id, nil)
}

func (e *lcEnv) verify(t testing.TB, challenge, code string) apptest.Response {
	t.Helper()
	return e.do(t, "POST", "/v1/challenges/"+challenge+"/verify", map[string]any{"code": code})
}

// evaluate scores a login of user from d, with a remembered-device token
// when token is not "".
func (e *lcEnv) evaluate(t testing.TB, user string, d lcDevice, token string) map[string]any {
	t.Helper()
	body := map[string]any{"user_id": user, "ip": d.IP, "user_agent": d.UA, "device_id": d.ID}
	if token != "" {
		body["device_token"] = token
	}
	ev := e.must(t, 200, "POST", "/v1/logins/evaluate", body)
	if ch := lcObj(ev, "challenge"); ch != nil && ch["channel"] != "totp" {
		// A code not awaited (the login is verified with a backup code, or
		// not at all) must not arrive after a later test step counted the
		// messages so far.
		e.settle(t, lcStr(ch, "id"))
	}
	return ev
}

// settle waits until the queue has sent (or dropped) the challenge's
// message.
func (e *lcEnv) settle(t testing.TB, id string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := e.must(t, 200, "GET", "/v1/challenges/"+id, nil)
		if got["delivery_status"] != "queued" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("challenge %s: message still queued after 10s", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loginChallenge evaluates a login that must be challenged and returns the
// challenge.
func (e *lcEnv) loginChallenge(t testing.TB, user string, d lcDevice) map[string]any {
	t.Helper()
	ev := e.evaluate(t, user, d, "")
	if ev["decision"] != "challenge" {
		t.Fatalf("login of %s: decision %v, want challenge: %v", user, ev["decision"], ev)
	}
	return lcObj(ev, "challenge")
}

// enrollSMS enrols phone as user's first factor and returns the first
// backup codes.
func (e *lcEnv) enrollSMS(t testing.TB, user, phone string) []string {
	t.Helper()
	seen := len(e.Twilio.Messages())
	st := e.must(t, 201, "POST", "/v1/users/"+user+"/sms", map[string]any{"phone": phone})
	id := lcStr(lcObj(st, "challenge"), "id")
	r := e.verify(t, id, e.SMSCode(t, phone, seen))
	if r.Status != 200 || r.Body["purpose"] != "enroll_sms" {
		t.Fatalf("SMS enrolment of %s: %d %s", user, r.Status, r.Raw)
	}
	codes := lcStrings(lcObj(r.Body, "result")["backup_codes"])
	if len(codes) != 10 {
		t.Fatalf("SMS enrolment of %s: %d backup codes, want 10: %s", user, len(codes), r.Raw)
	}
	return codes
}

// rememberDevice makes a challenged login of an SMS user from d, verifies
// it with remember_device and returns the device token.
func (e *lcEnv) rememberDevice(t testing.TB, user, phone string, d lcDevice) string {
	t.Helper()
	seen := len(e.Twilio.Messages())
	ch := e.loginChallenge(t, user, d)
	code := e.SMSCode(t, phone, seen)
	res := e.must(t, 200, "POST", "/v1/challenges/"+lcStr(ch, "id")+"/verify", map[string]any{
		"code": code, "remember_device": true, "ip": d.IP, "user_agent": d.UA})
	tok := lcStr(lcObj(res, "result"), "device_token")
	if tok == "" {
		t.Fatalf("verify with remember_device gave no device_token: %v", res)
	}
	return tok
}

// smsTo waits for a message to `to`, after the first seen ones, whose body
// holds want.
func (e *lcEnv) smsTo(t testing.TB, to string, seen int, want string) twiliotest.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		msgs := e.Twilio.Messages()
		for i := len(msgs) - 1; i >= seen; i-- {
			if msgs[i].To == to && strings.Contains(msgs[i].Body, want) {
				return msgs[i]
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no SMS to %s holding %q within 10s", to, want)
	return twiliotest.Message{}
}

// smsCount counts the messages to `to` after the first seen ones.
func (e *lcEnv) smsCount(to string, seen int) int {
	n := 0
	msgs := e.Twilio.Messages()
	for i := seen; i < len(msgs); i++ {
		if msgs[i].To == to {
			n++
		}
	}
	return n
}

// mailTo waits for a mail to addr, after the first seen ones, whose subject
// or text holds want.
func (e *lcEnv) mailTo(t testing.TB, addr string, seen int, want string) smtptest.Message {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		msgs := e.SMTP.Messages()
		for i := len(msgs) - 1; i >= seen; i-- {
			if slices.Contains(msgs[i].To, addr) && (strings.Contains(msgs[i].Subject, want) || strings.Contains(msgs[i].Text, want)) {
				return msgs[i]
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no mail to %s holding %q within 10s", addr, want)
	return smtptest.Message{}
}

var lcSixDigits = regexp.MustCompile(`\b\d{6}\b`)

// events reads the user's audit log with the manager key.
func (e *lcEnv) events(t testing.TB, user string) []map[string]any {
	t.Helper()
	body := e.Must(t, 200, "GET", "/v1/admin/events?user_id="+user, e.Mgr, nil)
	var out []map[string]any
	for _, ev := range body["events"].([]any) {
		out = append(out, ev.(map[string]any))
	}
	return out
}

// waitChallengeStatus polls GET /v1/challenges/{id} until its status is
// want.
func (e *lcEnv) waitChallengeStatus(t testing.TB, id, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := e.must(t, 200, "GET", "/v1/challenges/"+id, nil)
		if got["status"] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("challenge %s: status %v after 10s, want %s", id, got["status"], want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lcWantErr checks an error answer's status and code and returns the error
// object.
func lcWantErr(t testing.TB, r apptest.Response, status int, code string) map[string]any {
	t.Helper()
	e, _ := r.Body["error"].(map[string]any)
	if r.Status != status || e == nil || e["code"] != code {
		t.Errorf("answer %d %s, want %d %s", r.Status, r.Raw, status, code)
		return map[string]any{}
	}
	if msg, _ := e["message"].(string); msg == "" {
		t.Errorf("error without a message: %s", r.Raw)
	}
	return e
}

func lcObj(m map[string]any, key string) map[string]any {
	v, _ := m[key].(map[string]any)
	return v
}

func lcStr(m map[string]any, key string) string {
	v, _ := m[key].(string)
	return v
}

func lcStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func lcSignals(ev map[string]any) []string {
	var names []string
	for _, s := range lcObj(ev, "risk")["signals"].([]any) {
		names = append(names, lcStr(s.(map[string]any), "name"))
	}
	return names
}

// lcFactors returns the user's factors by channel.
func lcFactors(u map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, f := range u["factors"].([]any) {
		f := f.(map[string]any)
		out[lcStr(f, "channel")] = f
	}
	return out
}

func lcChannels(u map[string]any) []string {
	var out []string
	for _, f := range u["factors"].([]any) {
		out = append(out, lcStr(f.(map[string]any), "channel"))
	}
	return out
}

// lcCheckPhone checks that the user's SMS factor is phone, shown masked.
func lcCheckPhone(t testing.TB, u map[string]any, phone string) {
	t.Helper()
	f := lcFactors(u)["sms"]
	if f == nil {
		t.Errorf("user %v has no SMS factor, want %s", u["user_id"], phone)
		return
	}
	d := lcStr(f, "destination")
	if !strings.HasSuffix(d, phone[len(phone)-3:]) || strings.Contains(d, phone[3:]) {
		t.Errorf("SMS factor shown as %q, want %s masked", d, phone)
	}
}

// lcWrong returns a six-digit code that is not code.
func lcWrong(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

// TestLifecyclePhoneChange walks the dual confirmation on a single node and
// on a cluster: a code to the current number, then one to the new number;
// the switch keeps the backup codes, forgets remembered devices and tells
// the old number.
func TestLifecyclePhoneChange(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{apptest.Single, apptest.Cluster} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			e := lcStart(t, apptest.Options{Redis: kind})
			oldPhone, newPhone := lcPhone(156), lcPhone(157)
			// Every login not from a remembered device is challenged, so
			// whether a token still skips the challenge shows plainly.
			e.policy(t, map[string]any{"challenge": "every_login"})
			e.must(t, 200, "PUT", "/v1/users/carol", map[string]any{"email": "carol@example.test"})
			codes := e.enrollSMS(t, "carol", oldPhone)
			token := e.rememberDevice(t, "carol", oldPhone, lcLaptop)
			u := e.user(t, "carol")
			if u["backup_codes_left"] != 10.0 || u["remembered_devices"] != 1.0 || u["phone_change_pending"] != false {
				t.Fatalf("before the change: %v", u)
			}

			// Step one: a code to the current number, nothing to the new one.
			seen := len(e.Twilio.Messages())
			st := e.must(t, 201, "POST", "/v1/users/carol/phone-change", map[string]any{"new_phone": newPhone})
			ch := lcObj(st, "challenge")
			if ch["purpose"] != "phone_change_old" || ch["channel"] != "sms" || ch["status"] != "pending" ||
				!strings.HasSuffix(lcStr(ch, "destination"), "156") || strings.Contains(lcStr(ch, "destination"), "491570156") {
				t.Fatalf("phone change started: %v", st)
			}
			code := e.SMSCode(t, oldPhone, seen)
			u = e.user(t, "carol")
			lcCheckPhone(t, u, oldPhone)
			if u["phone_change_pending"] != true {
				t.Errorf("pending change not shown: %v", u)
			}

			res := e.verify(t, lcStr(ch, "id"), code)
			if res.Status != 200 || res.Body["verified"] != true || res.Body["purpose"] != "phone_change_old" {
				t.Fatalf("step one: %d %s", res.Status, res.Raw)
			}
			next := lcObj(lcObj(res.Body, "result"), "next_challenge")
			if next["purpose"] != "phone_change_new" || next["channel"] != "sms" || next["status"] != "pending" ||
				next["id"] == ch["id"] || !strings.HasSuffix(lcStr(next, "destination"), "157") {
				t.Fatalf("step one's next challenge: %s", res.Raw)
			}
			// Proving the old number alone switches nothing.
			u = e.user(t, "carol")
			lcCheckPhone(t, u, oldPhone)
			if u["remembered_devices"] != 1.0 || u["phone_change_pending"] != true {
				t.Errorf("after step one: %v", u)
			}

			// Step two: the code sent to the new number switches it.
			newCode := e.SMSCode(t, newPhone, seen)
			seen = len(e.Twilio.Messages())
			seenMail := len(e.SMTP.Messages())
			res = e.verify(t, lcStr(next, "id"), newCode)
			if res.Status != 200 || res.Body["purpose"] != "phone_change_new" {
				t.Fatalf("step two: %d %s", res.Status, res.Raw)
			}
			u = e.user(t, "carol")
			lcCheckPhone(t, u, newPhone)
			if u["enrolled"] != true || u["backup_codes_left"] != 10.0 || u["remembered_devices"] != 0.0 || u["phone_change_pending"] != false {
				t.Errorf("after the change: want 10 backup codes, no remembered device, nothing pending: %v", u)
			}
			if ds := e.must(t, 200, "GET", "/v1/users/carol/devices", nil)["devices"].([]any); len(ds) != 0 {
				t.Errorf("devices after the change: %v", ds)
			}

			// The old number is told, without the new number in full.
			notice := e.smsTo(t, oldPhone, seen, "changed")
			if strings.Contains(notice.Body, newPhone[1:]) || !strings.Contains(notice.Body, "157") {
				t.Errorf("notice to the old number: %q", notice.Body)
			}
			e.mailTo(t, "carol@example.test", seenMail, "phone number")
			types := []string{}
			for _, ev := range e.events(t, "carol") {
				types = append(types, lcStr(ev, "type"))
			}
			if !slices.Contains(types, "phone_changed") {
				t.Errorf("audit log of carol: %v, want a phone_changed event", types)
			}

			// The old device token no longer skips the challenge; the next
			// code goes to the new number; the old backup codes still work.
			ev := e.evaluate(t, "carol", lcLaptop, token)
			lch := lcObj(ev, "challenge")
			if ev["decision"] != "challenge" || slices.Contains(lcSignals(ev), "remembered_device") ||
				!strings.HasSuffix(lcStr(lch, "destination"), "157") {
				t.Fatalf("login with the forgotten device's token: %v", ev)
			}
			res = e.verify(t, lcStr(lch, "id"), codes[0])
			if res.Status != 200 || lcObj(res.Body, "result")["backup_codes_left"] != 9.0 {
				t.Errorf("a backup code from before the change: %d %s", res.Status, res.Raw)
			}
		})
	}
}

// TestLifecyclePhoneChangeWrongCode: a wrong code at either step advances
// nothing; five wrong codes at step one kill the flow.
func TestLifecyclePhoneChangeWrongCode(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})

	t.Run("wrong then right", func(t *testing.T) {
		t.Parallel()
		oldPhone, newPhone := lcPhone(201), lcPhone(202)
		e.enrollSMS(t, "dave", oldPhone)
		seen := len(e.Twilio.Messages())
		ch := lcObj(e.must(t, 201, "POST", "/v1/users/dave/phone-change", map[string]any{"new_phone": newPhone}), "challenge")
		code := e.SMSCode(t, oldPhone, seen)

		r := e.verify(t, lcStr(ch, "id"), lcWrong(code))
		if lcWantErr(t, r, 422, "invalid_code")["attempts_left"] != 4.0 {
			t.Errorf("attempts_left after one wrong code: %s", r.Raw)
		}
		if n := e.smsCount(newPhone, seen); n != 0 {
			t.Errorf("%d messages to the new number after a wrong code", n)
		}
		if got := e.must(t, 200, "GET", "/v1/challenges/"+lcStr(ch, "id"), nil); got["status"] != "pending" || got["attempts_left"] != 4.0 {
			t.Errorf("step one after a wrong code: %v", got)
		}
		lcCheckPhone(t, e.user(t, "dave"), oldPhone)

		// The right code still works; a wrong one at step two switches
		// nothing either.
		res := e.must(t, 200, "POST", "/v1/challenges/"+lcStr(ch, "id")+"/verify", map[string]any{"code": code})
		next := lcObj(lcObj(res, "result"), "next_challenge")
		newCode := e.SMSCode(t, newPhone, seen)
		lcWantErr(t, e.verify(t, lcStr(next, "id"), lcWrong(newCode)), 422, "invalid_code")
		lcWantErr(t, e.verify(t, lcStr(next, "id"), code), 422, "invalid_code") // the old number's code
		lcCheckPhone(t, e.user(t, "dave"), oldPhone)
		e.must(t, 200, "POST", "/v1/challenges/"+lcStr(next, "id")+"/verify", map[string]any{"code": newCode})
		lcCheckPhone(t, e.user(t, "dave"), newPhone)
	})

	t.Run("locked at step one", func(t *testing.T) {
		t.Parallel()
		oldPhone, newPhone := lcPhone(203), lcPhone(204)
		e.enrollSMS(t, "dora", oldPhone)
		seen := len(e.Twilio.Messages())
		ch := lcObj(e.must(t, 201, "POST", "/v1/users/dora/phone-change", map[string]any{"new_phone": newPhone}), "challenge")
		code := e.SMSCode(t, oldPhone, seen)
		id := lcStr(ch, "id")
		for i := 0; i < 4; i++ {
			lcWantErr(t, e.verify(t, id, lcWrong(code)), 422, "invalid_code")
		}
		lcWantErr(t, e.verify(t, id, lcWrong(code)), 423, "too_many_attempts")
		lcWantErr(t, e.verify(t, id, code), 423, "too_many_attempts")
		if n := e.smsCount(newPhone, seen); n != 0 {
			t.Errorf("%d messages to the new number after a locked step one", n)
		}
		lcCheckPhone(t, e.user(t, "dora"), oldPhone)
	})
}

// TestLifecyclePhoneChangeBackupCode: a user who lost the old phone proves
// step one with a backup code; step two still needs the new phone's code.
func TestLifecyclePhoneChangeBackupCode(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})
	oldPhone, newPhone := lcPhone(211), lcPhone(212)
	codes := e.enrollSMS(t, "erik", oldPhone)

	seen := len(e.Twilio.Messages())
	ch := lcObj(e.must(t, 201, "POST", "/v1/users/erik/phone-change", map[string]any{"new_phone": newPhone}), "challenge")
	res := e.verify(t, lcStr(ch, "id"), codes[3])
	if res.Status != 200 || res.Body["purpose"] != "phone_change_old" {
		t.Fatalf("step one with a backup code: %d %s", res.Status, res.Raw)
	}
	out := lcObj(res.Body, "result")
	next := lcObj(out, "next_challenge")
	if next["purpose"] != "phone_change_new" || out["backup_codes_left"] != 9.0 {
		t.Fatalf("step one with a backup code: %s", res.Raw)
	}
	if u := e.user(t, "erik"); u["backup_codes_left"] != 9.0 {
		t.Errorf("backup codes left after using one: %v", u["backup_codes_left"])
	}

	// A backup code proves the account holder, not the new phone.
	lcWantErr(t, e.verify(t, lcStr(next, "id"), codes[4]), 422, "invalid_code")
	lcCheckPhone(t, e.user(t, "erik"), oldPhone)

	e.must(t, 200, "POST", "/v1/challenges/"+lcStr(next, "id")+"/verify", map[string]any{"code": e.SMSCode(t, newPhone, seen)})
	u := e.user(t, "erik")
	lcCheckPhone(t, u, newPhone)
	if u["backup_codes_left"] != 9.0 {
		t.Errorf("backup codes left after the change: %v, want 9", u["backup_codes_left"])
	}
}

// TestLifecyclePhoneChangeExpiry: either step expiring aborts the change.
// The short-lived challenges come from a second stepupd with codes.ttl 1s
// on the same Redis: the first one enrols without a race against the clock.
func TestLifecyclePhoneChangeExpiry(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})
	short := &lcEnv{App: e.App, Mgr: e.Mgr, Env: apptest.New(t, apptest.Options{
		Redis: apptest.Single, RedisAddrs: e.Addrs, Twilio: e.Twilio, SMTP: e.SMTP,
		Configure: func(c *config.Config) { c.Codes.TTL = time.Second },
	})}

	t.Run("step one", func(t *testing.T) {
		t.Parallel()
		oldPhone, newPhone := lcPhone(221), lcPhone(222)
		e.enrollSMS(t, "fred", oldPhone)
		seen := len(e.Twilio.Messages())
		ch := lcObj(short.must(t, 201, "POST", "/v1/users/fred/phone-change", map[string]any{"new_phone": newPhone}), "challenge")
		code := e.SMSCode(t, oldPhone, seen)
		e.waitChallengeStatus(t, lcStr(ch, "id"), "expired")
		lcWantErr(t, e.verify(t, lcStr(ch, "id"), code), 410, "challenge_expired")
		if n := e.smsCount(newPhone, seen); n != 0 {
			t.Errorf("%d messages to the new number after step one expired", n)
		}
		u := e.user(t, "fred")
		lcCheckPhone(t, u, oldPhone)
		if u["phone_change_pending"] != false {
			t.Errorf("phone_change_pending is %v after the flow expired, want false", u["phone_change_pending"])
		}

		// Aborted, not stuck: a new request goes through.
		seen = len(e.Twilio.Messages())
		ch = lcObj(e.must(t, 201, "POST", "/v1/users/fred/phone-change", map[string]any{"new_phone": newPhone}), "challenge")
		res := e.must(t, 200, "POST", "/v1/challenges/"+lcStr(ch, "id")+"/verify", map[string]any{"code": e.SMSCode(t, oldPhone, seen)})
		next := lcObj(lcObj(res, "result"), "next_challenge")
		e.must(t, 200, "POST", "/v1/challenges/"+lcStr(next, "id")+"/verify", map[string]any{"code": e.SMSCode(t, newPhone, seen)})
		lcCheckPhone(t, e.user(t, "fred"), newPhone)
	})

	t.Run("step two", func(t *testing.T) {
		t.Parallel()
		oldPhone, newPhone := lcPhone(223), lcPhone(224)
		e.enrollSMS(t, "gina", oldPhone)
		seen := len(e.Twilio.Messages())
		ch := lcObj(e.must(t, 201, "POST", "/v1/users/gina/phone-change", map[string]any{"new_phone": newPhone}), "challenge")
		// Verified on the short-lived stepupd, step two lives one second.
		res := short.must(t, 200, "POST", "/v1/challenges/"+lcStr(ch, "id")+"/verify", map[string]any{"code": e.SMSCode(t, oldPhone, seen)})
		next := lcObj(lcObj(res, "result"), "next_challenge")
		if exp, err := time.Parse(time.RFC3339, lcStr(next, "expires_at")); err != nil || time.Until(exp) > 5*time.Second {
			t.Fatalf("step two expires at %v (%v), want within a second", next["expires_at"], err)
		}
		newCode := e.SMSCode(t, newPhone, seen)
		e.waitChallengeStatus(t, lcStr(next, "id"), "expired")
		lcWantErr(t, e.verify(t, lcStr(next, "id"), newCode), 410, "challenge_expired")
		u := e.user(t, "gina")
		lcCheckPhone(t, u, oldPhone)
		if u["backup_codes_left"] != 10.0 {
			t.Errorf("backup codes after the flow expired: %v", u["backup_codes_left"])
		}
		if u["phone_change_pending"] != false {
			t.Errorf("phone_change_pending is %v after the flow expired, want false", u["phone_change_pending"])
		}
	})
}

// TestLifecyclePhoneChangeReplaced: a second request replaces the first,
// whether or not the first's step one was done.
func TestLifecyclePhoneChangeReplaced(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})

	t.Run("before step one", func(t *testing.T) {
		t.Parallel()
		oldPhone, firstPhone, secondPhone := lcPhone(231), lcPhone(232), lcPhone(233)
		e.enrollSMS(t, "hugo", oldPhone)
		seen := len(e.Twilio.Messages())
		first := lcObj(e.must(t, 201, "POST", "/v1/users/hugo/phone-change", map[string]any{"new_phone": firstPhone}), "challenge")
		firstCode := e.SMSCode(t, oldPhone, seen)
		seen2 := len(e.Twilio.Messages())
		second := lcObj(e.must(t, 201, "POST", "/v1/users/hugo/phone-change", map[string]any{"new_phone": secondPhone}), "challenge")
		secondCode := e.SMSCode(t, oldPhone, seen2)

		if got := e.must(t, 200, "GET", "/v1/challenges/"+lcStr(first, "id"), nil); got["status"] != "cancelled" {
			t.Errorf("replaced challenge: %v", got)
		}
		lcWantErr(t, e.verify(t, lcStr(first, "id"), firstCode), 410, "challenge_cancelled")
		if n := e.smsCount(firstPhone, seen); n != 0 {
			t.Errorf("%d messages to the replaced request's number", n)
		}

		res := e.must(t, 200, "POST", "/v1/challenges/"+lcStr(second, "id")+"/verify", map[string]any{"code": secondCode})
		next := lcObj(lcObj(res, "result"), "next_challenge")
		e.must(t, 200, "POST", "/v1/challenges/"+lcStr(next, "id")+"/verify", map[string]any{"code": e.SMSCode(t, secondPhone, seen2)})
		lcCheckPhone(t, e.user(t, "hugo"), secondPhone)
		if n := e.smsCount(firstPhone, seen); n != 0 {
			t.Errorf("%d messages to the replaced request's number", n)
		}
	})

	t.Run("after step one", func(t *testing.T) {
		t.Parallel()
		oldPhone, firstPhone, secondPhone := lcPhone(234), lcPhone(235), lcPhone(236)
		e.enrollSMS(t, "iris", oldPhone)
		seen := len(e.Twilio.Messages())
		first := lcObj(e.must(t, 201, "POST", "/v1/users/iris/phone-change", map[string]any{"new_phone": firstPhone}), "challenge")
		res := e.must(t, 200, "POST", "/v1/challenges/"+lcStr(first, "id")+"/verify", map[string]any{"code": e.SMSCode(t, oldPhone, seen)})
		firstNext := lcObj(lcObj(res, "result"), "next_challenge")
		firstNewCode := e.SMSCode(t, firstPhone, seen)

		seen2 := len(e.Twilio.Messages())
		second := lcObj(e.must(t, 201, "POST", "/v1/users/iris/phone-change", map[string]any{"new_phone": secondPhone}), "challenge")
		lcWantErr(t, e.verify(t, lcStr(firstNext, "id"), firstNewCode), 410, "challenge_cancelled")
		lcCheckPhone(t, e.user(t, "iris"), oldPhone)

		res = e.must(t, 200, "POST", "/v1/challenges/"+lcStr(second, "id")+"/verify", map[string]any{"code": e.SMSCode(t, oldPhone, seen2)})
		next := lcObj(lcObj(res, "result"), "next_challenge")
		e.must(t, 200, "POST", "/v1/challenges/"+lcStr(next, "id")+"/verify", map[string]any{"code": e.SMSCode(t, secondPhone, seen2)})
		lcCheckPhone(t, e.user(t, "iris"), secondPhone)
		// The first flow stays dead once the second is done.
		lcWantErr(t, e.verify(t, lcStr(firstNext, "id"), firstNewCode), 410, "challenge_cancelled")
		lcCheckPhone(t, e.user(t, "iris"), secondPhone)
	})
}

// TestLifecyclePhoneChangeRefused: numbers that cannot be the new number
// are refused with 422 before any code is sent.
func TestLifecyclePhoneChangeRefused(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})
	phone := lcPhone(241)
	e.enrollSMS(t, "jack", phone)
	seen := len(e.Twilio.Messages())

	for _, tc := range []struct{ name, number, code string }{
		{"the current number", phone, "phone_unchanged"},
		{"the current number, spaced", "+61 491 570 241", "phone_unchanged"},
		{"UK drama range", "+447700900123", "phone_invalid"},
		{"national format", "0491570242", "phone_invalid"},
		{"too short", "+6149157024", "phone_invalid"},
		{"not a number", "call me", "phone_invalid"},
		{"with an extension", "+61491570242 ext. 12", "phone_invalid"},
		{"empty", "", "phone_invalid"},
		{"fixed line", "+61293744000", "phone_not_mobile"},
		{"premium rate", "+611900123456", "phone_not_mobile"},
		{"toll free", "+611800123456", "phone_not_mobile"},
	} {
		r := e.do(t, "POST", "/v1/users/jack/phone-change", map[string]any{"new_phone": tc.number})
		if r.Status != 422 {
			t.Errorf("%s (%q): %d %s, want 422 %s", tc.name, tc.number, r.Status, r.Raw, tc.code)
			continue
		}
		lcWantErr(t, r, 422, tc.code)
	}

	// Outside the tenant's SMS countries.
	e.policy(t, map[string]any{"sms_countries": []string{"AU"}})
	lcWantErr(t, e.do(t, "POST", "/v1/users/jack/phone-change", map[string]any{"new_phone": "+14155550123"}), 422, "phone_country_not_allowed")

	// A user without a phone has nothing to change.
	lcWantErr(t, e.do(t, "POST", "/v1/users/nobody/phone-change", map[string]any{"new_phone": lcPhone(242)}), 422, "no_sms_factor")

	u := e.user(t, "jack")
	lcCheckPhone(t, u, phone)
	if u["phone_change_pending"] != false {
		t.Errorf("a refused request left a change pending: %v", u)
	}
	if msgs := e.Twilio.Messages(); len(msgs) != seen {
		t.Errorf("refused requests sent %d messages", len(msgs)-seen)
	}
}

// TestLifecycleDisable: a code on the user's factor turns 2FA off, with the
// backup codes and remembered devices; a requiring policy refuses it.
func TestLifecycleDisable(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})

	t.Run("optional", func(t *testing.T) {
		phone := lcPhone(251)
		e.enrollSMS(t, "kate", phone)
		token := e.rememberDevice(t, "kate", phone, lcLaptop)
		if u := e.user(t, "kate"); u["enrolled"] != true || u["remembered_devices"] != 1.0 || u["backup_codes_left"] != 10.0 {
			t.Fatalf("before disabling: %v", u)
		}
		seen := len(e.Twilio.Messages())
		st := e.must(t, 201, "POST", "/v1/users/kate/2fa/disable", map[string]any{"ip": lcLaptop.IP, "user_agent": lcLaptop.UA})
		ch := lcObj(st, "challenge")
		if ch["purpose"] != "disable" || ch["channel"] != "sms" || !strings.HasSuffix(lcStr(ch, "destination"), "251") {
			t.Fatalf("disable started: %v", st)
		}
		code := e.SMSCode(t, phone, seen)
		lcWantErr(t, e.verify(t, lcStr(ch, "id"), lcWrong(code)), 422, "invalid_code")
		if u := e.user(t, "kate"); u["enrolled"] != true {
			t.Errorf("a wrong code disabled 2FA: %v", u)
		}

		res := e.verify(t, lcStr(ch, "id"), code)
		if res.Status != 200 || res.Body["purpose"] != "disable" {
			t.Fatalf("disable: %d %s", res.Status, res.Raw)
		}
		u := e.user(t, "kate")
		if u["enrolled"] != false || len(u["factors"].([]any)) != 0 || u["backup_codes_left"] != 0.0 || u["remembered_devices"] != 0.0 {
			t.Errorf("after disabling: %v", u)
		}
		if ds := e.must(t, 200, "GET", "/v1/users/kate/devices", nil)["devices"].([]any); len(ds) != 0 {
			t.Errorf("devices after disabling: %v", ds)
		}
		ev := e.evaluate(t, "kate", lcLaptop, token)
		if ev["decision"] != "allow" || slices.Contains(lcSignals(ev), "remembered_device") || ev["challenge"] != nil {
			t.Errorf("login after disabling: %v", ev)
		}
		// Nothing left to prove a later action with.
		lcWantErr(t, e.do(t, "POST", "/v1/users/kate/backup-codes", nil), 422, "no_factor")
		lcWantErr(t, e.do(t, "POST", "/v1/users/kate/2fa/disable", nil), 422, "no_factor")
	})

	t.Run("required", func(t *testing.T) {
		phone := lcPhone(252)
		e.enrollSMS(t, "liam", phone)
		// A disable started while optional...
		seen := len(e.Twilio.Messages())
		ch := lcObj(e.must(t, 201, "POST", "/v1/users/liam/2fa/disable", nil), "challenge")
		code := e.SMSCode(t, phone, seen)

		e.policy(t, map[string]any{"mode": "required"})
		lcWantErr(t, e.do(t, "POST", "/v1/users/liam/2fa/disable", nil), 403, "policy_requires_2fa")
		// ...is refused when verified under the requiring policy.
		lcWantErr(t, e.verify(t, lcStr(ch, "id"), code), 403, "policy_requires_2fa")
		u := e.user(t, "liam")
		if u["enrolled"] != true || u["backup_codes_left"] != 10.0 {
			t.Errorf("2FA of liam under a requiring policy: %v", u)
		}
		lcCheckPhone(t, u, phone)
		e.policy(t, map[string]any{"mode": "optional"})
	})
}

// TestLifecycleBackupCodes: codes are single use, counted by GET, and
// replaced (old ones void) after a code on the factor.
func TestLifecycleBackupCodes(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{Configure: lcRoomyLimits})
	e.policy(t, map[string]any{"challenge": "every_login"})
	phone := lcPhone(261)
	old := e.enrollSMS(t, "mia", phone)
	if n := len(slices.Compact(slices.Sorted(slices.Values(old)))); n != 10 {
		t.Errorf("%d distinct first backup codes, want 10: %v", n, old)
	}
	if u := e.user(t, "mia"); u["backup_codes_left"] != 10.0 {
		t.Fatalf("backup codes after enrolment: %v", u)
	}

	// One used: nine left, and it does not work twice.
	res := e.verify(t, lcStr(e.loginChallenge(t, "mia", lcLaptop), "id"), old[0])
	if res.Status != 200 || lcObj(res.Body, "result")["backup_codes_left"] != 9.0 {
		t.Fatalf("login with a backup code: %d %s", res.Status, res.Raw)
	}
	if u := e.user(t, "mia"); u["backup_codes_left"] != 9.0 {
		t.Errorf("backup codes left after using one: %v", u["backup_codes_left"])
	}
	lcWantErr(t, e.verify(t, lcStr(e.loginChallenge(t, "mia", lcLaptop), "id"), old[0]), 422, "invalid_code")
	if u := e.user(t, "mia"); u["backup_codes_left"] != 9.0 {
		t.Errorf("backup codes left after a refused reuse: %v", u["backup_codes_left"])
	}

	// Regenerate, proven with the SMS code.
	seen := len(e.Twilio.Messages())
	st := e.must(t, 201, "POST", "/v1/users/mia/backup-codes", nil)
	ch := lcObj(st, "challenge")
	if ch["purpose"] != "backup_codes" || ch["channel"] != "sms" {
		t.Fatalf("backup codes started: %v", st)
	}
	code := e.SMSCode(t, phone, seen)
	if u := e.user(t, "mia"); u["backup_codes_left"] != 9.0 {
		t.Errorf("starting a regeneration changed the codes: %v", u["backup_codes_left"])
	}
	res = e.verify(t, lcStr(ch, "id"), code)
	if res.Status != 200 || res.Body["purpose"] != "backup_codes" {
		t.Fatalf("regenerate: %d %s", res.Status, res.Raw)
	}
	fresh := lcStrings(lcObj(res.Body, "result")["backup_codes"])
	if len(fresh) != 10 || len(slices.Compact(slices.Sorted(slices.Values(fresh)))) != 10 {
		t.Fatalf("regenerated codes: %v, want 10 distinct", fresh)
	}
	for _, c := range fresh {
		if slices.Contains(old, c) {
			t.Errorf("regenerated code %s was an old one", c)
		}
	}
	if u := e.user(t, "mia"); u["backup_codes_left"] != 10.0 {
		t.Errorf("backup codes left after regenerating: %v", u["backup_codes_left"])
	}

	// The old, unused codes are void; the new ones work once.
	lcWantErr(t, e.verify(t, lcStr(e.loginChallenge(t, "mia", lcLaptop), "id"), old[1]), 422, "invalid_code")
	res = e.verify(t, lcStr(e.loginChallenge(t, "mia", lcLaptop), "id"), fresh[0])
	if res.Status != 200 || lcObj(res.Body, "result")["backup_codes_left"] != 9.0 {
		t.Errorf("login with a regenerated code: %d %s", res.Status, res.Raw)
	}
	if u := e.user(t, "mia"); u["backup_codes_left"] != 9.0 {
		t.Errorf("backup codes left: %v, want 9", u["backup_codes_left"])
	}
	lcWantErr(t, e.verify(t, lcStr(e.loginChallenge(t, "mia", lcLaptop), "id"), fresh[0]), 422, "invalid_code")
}

// TestLifecycleEmailFactor: a user with an address gets codes by mail; one
// without is told to set one.
func TestLifecycleEmailFactor(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})
	addr := "nora@example.test"
	e.must(t, 200, "PUT", "/v1/users/nora", map[string]any{"email": addr, "display_name": "Nora"})

	seen := len(e.SMTP.Messages())
	st := e.must(t, 201, "POST", "/v1/users/nora/email-factor", nil)
	ch := lcObj(st, "challenge")
	if ch["purpose"] != "enroll_email" || ch["channel"] != "email" || ch["destination"] != "n•••@example.test" {
		t.Fatalf("e-mail enrolment started: %v", st)
	}
	m := e.mailTo(t, addr, seen, "verification code")
	code := lcSixDigits.FindString(m.Text)
	if code == "" {
		t.Fatalf("no code in the mail: %q", m.Text)
	}
	if u := e.user(t, "nora"); u["enrolled"] != false {
		t.Errorf("enrolled before the code: %v", u)
	}
	lcWantErr(t, e.verify(t, lcStr(ch, "id"), lcWrong(code)), 422, "invalid_code")
	res := e.verify(t, lcStr(ch, "id"), code)
	if res.Status != 200 || res.Body["purpose"] != "enroll_email" || len(lcStrings(lcObj(res.Body, "result")["backup_codes"])) != 10 {
		t.Fatalf("e-mail enrolment: %d %s", res.Status, res.Raw)
	}
	u := e.user(t, "nora")
	if u["enrolled"] != true || !slices.Equal(lcChannels(u), []string{"email"}) ||
		lcStr(lcFactors(u)["email"], "destination") != "n•••@example.test" || u["backup_codes_left"] != 10.0 {
		t.Errorf("after e-mail enrolment: %v", u)
	}

	// Logins are now challenged by mail.
	seen = len(e.SMTP.Messages())
	lch := e.loginChallenge(t, "nora", lcLaptop)
	if lch["channel"] != "email" {
		t.Fatalf("login challenge of an e-mail user: %v", lch)
	}
	code = lcSixDigits.FindString(e.mailTo(t, addr, seen, "verification code").Text)
	if r := e.verify(t, lcStr(lch, "id"), code); r.Status != 200 || r.Body["purpose"] != "login" {
		t.Errorf("login by e-mail code: %d %s", r.Status, r.Raw)
	}

	// No address, no e-mail factor.
	e.must(t, 200, "PUT", "/v1/users/omar", map[string]any{"display_name": "Omar"})
	lcWantErr(t, e.do(t, "POST", "/v1/users/omar/email-factor", nil), 422, "no_email")
	lcWantErr(t, e.do(t, "POST", "/v1/users/unknown-user/email-factor", nil), 422, "no_email")
	if u := e.user(t, "omar"); u["enrolled"] != false || len(u["factors"].([]any)) != 0 {
		t.Errorf("omar after a refused e-mail enrolment: %v", u)
	}
}

// TestLifecycleErase: erasing a user removes the profile, factors and
// history; the audit log keeps only that the erasure happened, and no key
// of the store names him or holds his data any more (by his id, as keys
// name him, or the keyed hashes of his id, phone and address).
func TestLifecycleErase(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})
	const user, email = "paul-7c1e", "paul-7c1e@example.test"
	phone := lcPhone(271)
	e.must(t, 200, "PUT", "/v1/users/"+user, map[string]any{"email": email, "display_name": "Paul"})
	e.enrollSMS(t, user, phone)
	e.rememberDevice(t, user, phone, lcLaptop) // a verified login teaches the history
	ev := e.evaluate(t, user, lcLaptop, "")
	if slices.Contains(lcSignals(ev), "no_history") {
		t.Fatalf("login after a verified one still has no history: %v", ev)
	}
	if evs := e.events(t, user); len(evs) == 0 {
		t.Fatalf("no audit events for paul before the erasure")
	}
	// What else a user leaves: a failed password (per user and per
	// client IP), a verdict on a login, a wrong code, a challenge still
	// pending at the erasure and its code, which the provider refused
	// for good (a dead letter).
	e.must(t, 204, "POST", "/v1/logins/failed", map[string]any{"user_id": user, "ip": lcPhoneDevice.IP, "user_agent": lcPhoneDevice.UA})
	e.must(t, 200, "POST", "/v1/logins/"+lcStr(ev, "login_id")+"/feedback", map[string]any{"verdict": "legit"})
	e.Twilio.Reply(twiliotest.Reply{Status: 400, Code: 21211, Message: "The 'To' number is not a valid phone number."})
	ch := e.loginChallenge(t, user, lcPhoneDevice)
	if got := e.must(t, 200, "GET", "/v1/challenges/"+lcStr(ch, "id"), nil); got["delivery_status"] != "failed" {
		t.Fatalf("code refused by the provider: delivery %v, want failed", got["delivery_status"])
	}
	if r := e.verify(t, lcStr(ch, "id"), "000000"); r.Status != 422 {
		t.Fatalf("wrong code: %d %s, want 422", r.Status, r.Raw)
	}

	e.must(t, 204, "DELETE", "/v1/users/"+user, nil)
	lcWantErr(t, e.do(t, "GET", "/v1/users/"+user, nil), 404, "user_not_found")
	lcWantErr(t, e.do(t, "GET", "/v1/users/"+user+"/devices", nil), 404, "user_not_found")
	lcWantErr(t, e.Do(t, "GET", "/v1/admin/users/"+user, e.Mgr, nil), 404, "user_not_found")

	evs := e.events(t, user)
	if len(evs) != 1 || evs[0]["type"] != "user_erased" {
		var types []string
		for _, ev := range evs {
			types = append(types, lcStr(ev, "type"))
		}
		t.Errorf("audit log of paul after the erasure: %v, want only user_erased", types)
	}
	for _, ev := range evs {
		if ev["type"] == "user_erased" && (ev["ip"] != nil || ev["country"] != nil || ev["browser"] != nil || ev["os"] != nil) {
			t.Errorf("the erasure event keeps personal data: %v", ev)
		}
	}

	// Nothing in the store names him but the erasure's own event. Rate
	// limits (their subject the keyed hash of his id or number) and the
	// client IP's window of failed passwords (its members keyed hashes
	// of user ids) outlive him by at most their hour: they are counters
	// that no one could find him in without the server secret, and a
	// limit that an erasure reset would let a caller re-enrol a number
	// and send it codes again at once.
	keep := func(k ksKey, line string) bool {
		switch {
		case k.Type == "stream" && strings.Contains(line, `"type":"user_erased"`):
			return true
		case k.TTL < 0 || k.TTL > time.Hour:
			return false
		case strings.HasPrefix(k.Name, "su:{rl:"):
			return true
		case strings.Contains(k.Name, ":fip:"):
			return !strings.Contains(line, user)
		}
		return false
	}
	for _, f := range ksFind(ksDump(t, e.Env), ksUserForms(e.TenantID, user, phone, email), keep) {
		t.Errorf("after the erasure: %s", f)
	}

	// The familiar login is a stranger's now.
	ev = e.evaluate(t, user, lcLaptop, "")
	if !slices.Contains(lcSignals(ev), "no_history") || ev["challenge"] != nil {
		t.Errorf("login after the erasure: %v, want no_history and no challenge", ev)
	}
	// That login makes paul known again, as a new user: no profile, no
	// factor, nothing from before the erasure.
	r := e.do(t, "GET", "/v1/users/"+user, nil)
	if r.Status != 200 || r.Body["enrolled"] != false || len(r.Body["factors"].([]any)) != 0 || r.Body["backup_codes_left"] != float64(0) {
		t.Errorf("paul after a new login: %d %s, want a new user without factors", r.Status, r.Raw)
	}
	if p, _ := r.Body["profile"].(map[string]any); len(p) != 0 {
		t.Errorf("profile after the erasure: %v, want empty", p)
	}
}

// TestLifecycleEraseEndsPendingChallenges: a challenge started before the
// erasure cannot bring the user back.
func TestLifecycleEraseEndsPendingChallenges(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})
	for i, tc := range []struct {
		name  string
		start func(t *testing.T, user string) map[string]any
	}{
		{"login", func(t *testing.T, user string) map[string]any { return e.loginChallenge(t, user, lcLaptop) }},
		{"backup codes", func(t *testing.T, user string) map[string]any {
			return lcObj(e.must(t, 201, "POST", "/v1/users/"+user+"/backup-codes", nil), "challenge")
		}},
		{"disable", func(t *testing.T, user string) map[string]any {
			return lcObj(e.must(t, 201, "POST", "/v1/users/"+user+"/2fa/disable", nil), "challenge")
		}},
		{"phone change", func(t *testing.T, user string) map[string]any {
			return lcObj(e.must(t, 201, "POST", "/v1/users/"+user+"/phone-change", map[string]any{"new_phone": lcPhone(290)}), "challenge")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			user, phone := fmt.Sprintf("quinn-%d", i), lcPhone(280+i)
			e.enrollSMS(t, user, phone)
			seen := len(e.Twilio.Messages())
			ch := tc.start(t, user)
			code := e.SMSCode(t, phone, seen)
			e.must(t, 204, "DELETE", "/v1/users/"+user, nil)

			r := e.verify(t, lcStr(ch, "id"), code)
			if r.Status != 404 && r.Status != 410 {
				t.Errorf("%s challenge verified after the erasure: %d %s, want 404 or 410", tc.name, r.Status, r.Raw)
			}
			if r := e.do(t, "GET", "/v1/users/"+user, nil); r.Status != 404 {
				t.Errorf("user after the erasure and a late verification: %d %s, want 404", r.Status, r.Raw)
			}
			if ev := e.evaluate(t, user, lcLaptop, ""); !slices.Contains(lcSignals(ev), "no_history") {
				t.Errorf("history after the erasure and a late verification: %v, want no_history", ev)
			}
		})
	}
}

// TestLifecycleHistoryImport: past logins imported once let the next
// familiar login through; bad imports are refused whole.
func TestLifecycleHistoryImport(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})
	now := time.Now().UTC()
	at := func(ago time.Duration) string { return now.Add(-ago).Format(time.RFC3339) }
	past := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = map[string]any{"ip": lcLaptop.IP, "user_agent": lcLaptop.UA, "device_id": lcLaptop.ID,
				"at": at(time.Duration(n-i) * 12 * time.Hour)}
		}
		return out
	}
	threshold := lcObj(e.Must(t, 200, "GET", "/v1/admin/policy", e.Mgr, nil), "thresholds")["challenge"].(float64)

	// Without history an enrolled user is challenged at cold start...
	e.enrollSMS(t, "rita", lcPhone(301))
	if ev := e.evaluate(t, "rita", lcLaptop, ""); ev["decision"] != "challenge" || !slices.Contains(lcSignals(ev), "no_history") {
		t.Fatalf("cold start without an import: %v", ev)
	}
	// ...with imported history the familiar login goes through.
	e.enrollSMS(t, "sara", lcPhone(302))
	if r := e.must(t, 201, "POST", "/v1/users/sara/history", map[string]any{"logins": past(5)}); r["imported"] != 5.0 {
		t.Errorf("import: %v, want 5 imported", r)
	}
	ev := e.evaluate(t, "sara", lcLaptop, "")
	risk := lcObj(ev, "risk")
	if ev["decision"] != "allow" || ev["challenge"] != nil || risk["level"] != "low" || risk["score"].(float64) >= threshold ||
		slices.Contains(lcSignals(ev), "no_history") {
		t.Errorf("familiar login after the import: %v", ev)
	}
	lcWantErr(t, e.do(t, "POST", "/v1/users/sara/history", map[string]any{"logins": past(1)}), 409, "history_exists")

	// Refused imports, each naming what is wrong.
	minimal := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = map[string]any{"ip": "192.0.2.1", "at": at(time.Hour)}
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		logins []any
		field  string
	}{
		{"none", []any{}, "logins"},
		{"1001", minimal(1001), "logins"},
		{"bad ip", []any{past(1)[0], map[string]any{"ip": "300.1.2.3", "at": at(time.Hour)}}, "logins[1].ip"},
		{"no ip", []any{map[string]any{"at": at(time.Hour)}}, "logins[0].ip"},
		{"future", []any{map[string]any{"ip": lcLaptop.IP, "at": now.Add(time.Hour).Format(time.RFC3339)}}, "logins[0].at"},
		{"no time", []any{map[string]any{"ip": lcLaptop.IP}}, "logins[0].at"},
		{"too old", []any{map[string]any{"ip": lcLaptop.IP, "at": at(5 * 365 * 24 * time.Hour)}}, "logins[0].at"},
	} {
		r := e.do(t, "POST", "/v1/users/tess/history", map[string]any{"logins": tc.logins})
		if r.Status != 400 || lcObj(r.Body, "error")["field"] != tc.field {
			t.Errorf("import %s: %d %.300s, want 400 naming %s", tc.name, r.Status, r.Raw, tc.field)
		}
	}
	// Nothing of the refused imports was kept: the first good one is taken,
	// up to 1000 logins.
	if r := e.must(t, 201, "POST", "/v1/users/tess/history", map[string]any{"logins": minimal(1000)}); r["imported"] != 1000.0 {
		t.Errorf("import of 1000: %v", r)
	}
}

// TestLifecycleTenantIsolation: another tenant's app key reaches none of a
// user's lifecycle.
func TestLifecycleTenantIsolation(t *testing.T) {
	t.Parallel()
	e := lcStart(t, apptest.Options{})
	_, otherApp, _ := e.Tenant(t, "globex")
	oldPhone, newPhone := lcPhone(311), lcPhone(312)
	e.policy(t, map[string]any{"challenge": "every_login"})
	e.must(t, 200, "PUT", "/v1/users/alice", map[string]any{"email": "alice@example.test"})
	e.enrollSMS(t, "alice", oldPhone)
	token := e.rememberDevice(t, "alice", oldPhone, lcLaptop)
	devID := lcStr(e.must(t, 200, "GET", "/v1/users/alice/devices", nil)["devices"].([]any)[0].(map[string]any), "id")
	seen := len(e.Twilio.Messages())
	ch := lcObj(e.must(t, 201, "POST", "/v1/users/alice/phone-change", map[string]any{"new_phone": newPhone}), "challenge")
	code := e.SMSCode(t, oldPhone, seen)
	id := lcStr(ch, "id")
	before := e.user(t, "alice")

	other := func(method, path string, body any) apptest.Response {
		t.Helper()
		r := e.Do(t, method, path, otherApp, body)
		for _, leak := range []string{"alice@", "a•••@", "••311", devID} {
			if strings.Contains(string(r.Raw), leak) {
				t.Errorf("%s %s with the other tenant's key shows %q: %s", method, path, leak, r.Raw)
			}
		}
		return r
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/v1/users/alice"},
		{"GET", "/v1/users/alice/devices"},
		{"DELETE", "/v1/users/alice/devices/" + devID},
		{"DELETE", "/v1/users/alice/devices"},
		{"POST", "/v1/users/alice/events/password-changed"},
		{"POST", "/v1/users/alice/events/signed-out-everywhere"},
		{"DELETE", "/v1/users/alice"},
	} {
		lcWantErr(t, other(c.method, c.path, nil), 404, "user_not_found")
	}
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/v1/challenges/" + id, nil},
		{"POST", "/v1/challenges/" + id + "/verify", map[string]any{"code": code}},
		{"POST", "/v1/challenges/" + id + "/resend", nil},
		{"POST", "/v1/challenges/" + id + "/switch", map[string]any{"channel": "sms"}},
	} {
		lcWantErr(t, other(c.method, c.path, c.body), 404, "challenge_not_found")
	}
	// The other tenant's "alice" is another user, with nothing to act on.
	lcWantErr(t, other("POST", "/v1/users/alice/phone-change", map[string]any{"new_phone": lcPhone(313)}), 422, "no_sms_factor")
	lcWantErr(t, other("POST", "/v1/users/alice/2fa/disable", nil), 422, "no_factor")
	lcWantErr(t, other("POST", "/v1/users/alice/backup-codes", nil), 422, "no_factor")
	ev := e.Must(t, 200, "POST", "/v1/logins/evaluate", otherApp, map[string]any{
		"user_id": "alice", "ip": lcLaptop.IP, "user_agent": lcLaptop.UA, "device_id": lcLaptop.ID, "device_token": token})
	if ev["decision"] != "allow" || !slices.Contains(lcSignals(ev), "no_history") || slices.Contains(lcSignals(ev), "remembered_device") {
		t.Errorf("the other tenant's alice logs in like a stranger: %v", ev)
	}

	// The first tenant's alice is untouched: same status, the pending change
	// still has all its attempts and completes.
	after := e.user(t, "alice")
	for _, k := range []string{"enrolled", "backup_codes_left", "remembered_devices", "phone_change_pending", "updated_at"} {
		if fmt.Sprint(after[k]) != fmt.Sprint(before[k]) {
			t.Errorf("%s of alice changed from %v to %v", k, before[k], after[k])
		}
	}
	lcCheckPhone(t, after, oldPhone)
	if got := e.must(t, 200, "GET", "/v1/challenges/"+id, nil); got["status"] != "pending" || got["attempts_left"] != 5.0 {
		t.Errorf("alice's challenge after the other tenant's tries: %v", got)
	}
	res := e.must(t, 200, "POST", "/v1/challenges/"+id+"/verify", map[string]any{"code": code})
	next := lcObj(lcObj(res, "result"), "next_challenge")
	e.must(t, 200, "POST", "/v1/challenges/"+lcStr(next, "id")+"/verify", map[string]any{"code": e.SMSCode(t, newPhone, seen)})
	lcCheckPhone(t, e.user(t, "alice"), newPhone)
}
