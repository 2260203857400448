package e2e_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	twclient "github.com/twilio/twilio-go/client"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/internal/apptest"
	"github.com/stepup-auth/stepup/internal/smtptest"
	"github.com/stepup-auth/stepup/internal/twiliotest"
)

// TestSMSPhoneValidation: numbers are checked with libphonenumber's rules
// before anything is sent, and a phone is enrolled once.
func TestSMSPhoneValidation(t *testing.T) {
	t.Parallel()
	s := csNewSite(t, apptest.Options{Redis: apptest.Single})
	s.Must(t, 200, "PUT", "/v1/users/jo", s.AppKey, map[string]any{"email": "jo@example.test"})

	refused := []struct{ number, code string }{
		{"+447700900123", "phone_invalid"},      // UK drama range: not a real number
		{"+61299999999", "phone_not_mobile"},    // a Sydney fixed line
		{"+61 2 9999 9999", "phone_not_mobile"}, // the same, formatted
		{"0491570156", "phone_invalid"},         // no country code
		{"+6149157", "phone_invalid"},           // too short
		{"", "phone_invalid"},
	}
	for _, c := range refused {
		r := s.Do(t, "POST", "/v1/users/jo/sms", s.AppKey, map[string]any{"phone": c.number})
		csWantError(t, r, 422, c.code)
		if msg := csStr(csErrorOf(r.Body), "message"); msg == "" {
			t.Errorf("%q: an error without a message: %s", c.number, r.Raw)
		}
	}

	num := csPhone(156)
	s.enrollSMS(t, "jo", num)
	u := s.Must(t, 200, "GET", "/v1/users/jo", s.AppKey, nil)
	if !slices.Equal(csFactorChannels(u), []string{"sms"}) {
		t.Fatalf("user after enrolment: %v", u)
	}
	csWantError(t, s.Do(t, "POST", "/v1/users/jo/sms", s.AppKey, map[string]any{"phone": num}), 409, "already_enrolled")
	csWantError(t, s.Do(t, "POST", "/v1/users/jo/sms", s.AppKey, map[string]any{"phone": csPhone(157)}), 409, "already_enrolled")

	// Nothing but the enrolment code went out.
	for _, m := range s.Twilio.Messages() {
		if m.To != num {
			t.Errorf("an SMS went to %s", m.To)
		}
	}
	if n := len(s.Twilio.Messages()); n != 1 {
		t.Errorf("%d SMS sent, want 1", n)
	}
}

// TestSMSStepUp: a user who already has a factor (e-mail) proves it before
// a new phone gets its code.
func TestSMSStepUp(t *testing.T) {
	t.Parallel()
	s := csNewSite(t, apptest.Options{Redis: apptest.Single})
	const addr = "kim@example.test"
	num := csPhone(158)
	s.Must(t, 200, "PUT", "/v1/users/kim", s.AppKey, map[string]any{"email": addr})

	ch := csObj(s.Must(t, 201, "POST", "/v1/users/kim/email-factor", s.AppKey, nil), "challenge")
	if ch["channel"] != "email" || ch["purpose"] != "enroll_email" {
		t.Fatalf("e-mail factor: %v", ch)
	}
	res := s.Must(t, 200, "POST", "/v1/challenges/"+csStr(ch, "id")+"/verify", s.AppKey,
		map[string]any{"code": csMailCode(t, s.SMTP, addr, 1)})
	if res["purpose"] != "enroll_email" || len(csDistinct(csObj(res, "result")["backup_codes"])) != 10 {
		t.Fatalf("e-mail factor verify: %v", res)
	}

	// The phone enrolment starts with a code on the e-mail factor.
	st := s.Must(t, 201, "POST", "/v1/users/kim/sms", s.AppKey, map[string]any{"phone": num})
	ch = csObj(st, "challenge")
	if st["step_up"] != true || ch["purpose"] != "step_up" || ch["channel"] != "email" {
		t.Fatalf("SMS enrolment of a user with a factor: %v", st)
	}
	code := csMailCode(t, s.SMTP, addr, 2)
	if n := len(csSMSTo(s.Twilio, num)); n != 0 {
		t.Fatalf("%d SMS to the new phone before the step-up", n)
	}
	csWantError(t, s.Do(t, "POST", "/v1/challenges/"+csStr(ch, "id")+"/verify", s.AppKey, map[string]any{"code": csWrongCode(code)}), 422, "invalid_code")
	if n := len(csSMSTo(s.Twilio, num)); n != 0 {
		t.Fatalf("%d SMS to the new phone after a wrong step-up code", n)
	}

	res = s.Must(t, 200, "POST", "/v1/challenges/"+csStr(ch, "id")+"/verify", s.AppKey, map[string]any{"code": code})
	next := csObj(csObj(res, "result"), "next_challenge")
	if res["purpose"] != "step_up" || next["purpose"] != "enroll_sms" || next["channel"] != "sms" ||
		!strings.HasSuffix(csStr(next, "destination"), "158") {
		t.Fatalf("step-up verify: %v", res)
	}
	res = s.Must(t, 200, "POST", "/v1/challenges/"+csStr(next, "id")+"/verify", s.AppKey,
		map[string]any{"code": csWaitSMS(t, s.Twilio, num, 1).Code()})
	if res["purpose"] != "enroll_sms" {
		t.Errorf("SMS enrolment verify: %v", res)
	}
	if _, ok := csObj(res, "result")["backup_codes"]; ok {
		t.Errorf("new backup codes for a user who has them: %v", res)
	}
	u := s.Must(t, 200, "GET", "/v1/users/kim", s.AppKey, nil)
	if cs := csFactorChannels(u); !slices.Contains(cs, "sms") || !slices.Contains(cs, "email") || u["backup_codes_left"] != 10.0 {
		t.Errorf("user with two factors: %v", u)
	}
}

// TestSMSTwilioRetry: a Twilio outage (500) delays the code; the retry
// delivers it.
func TestSMSTwilioRetry(t *testing.T) {
	t.Parallel()
	s := csNewSite(t, apptest.Options{Redis: apptest.Single})
	num := csPhone(159)
	s.Twilio.Reply(twiliotest.Reply{Status: 500, Code: 20500, Message: "Internal Server Error"})
	s.Must(t, 200, "PUT", "/v1/users/lea", s.AppKey, map[string]any{"email": "lea@example.test"})
	id := csStr(csObj(s.Must(t, 201, "POST", "/v1/users/lea/sms", s.AppKey, map[string]any{"phone": num}), "challenge"), "id")

	code := csWaitSMS(t, s.Twilio, num, 1).Code()
	if got := csTwilioStatuses(s.Twilio, num); !slices.Equal(got, []int{500, 201}) {
		t.Errorf("Twilio answered %v, want [500 201]", got)
	}
	got := s.waitChallenge(t, id, "delivery_status sent", func(c map[string]any) bool { return c["delivery_status"] == "sent" })
	if got["delivery_error"] != nil {
		t.Errorf("a delivered challenge keeps an error: %v", got)
	}
	s.Must(t, 200, "POST", "/v1/challenges/"+id+"/verify", s.AppKey, map[string]any{"code": code})
}

// TestSMSTwilioPermanentFailure: an invalid number (21211) is not retried,
// and GET /v1/challenges/{id} says why the code never came.
func TestSMSTwilioPermanentFailure(t *testing.T) {
	t.Parallel()
	s := csNewSite(t, apptest.Options{Redis: apptest.Single})
	num := csPhone(160)
	s.Twilio.Reply(twiliotest.Reply{Status: 400, Code: 21211, Message: "The 'To' number " + num + " is not a valid phone number."})
	s.Must(t, 200, "PUT", "/v1/users/max", s.AppKey, map[string]any{"email": "max@example.test"})
	id := csStr(csObj(s.Must(t, 201, "POST", "/v1/users/max/sms", s.AppKey, map[string]any{"phone": num}), "challenge"), "id")

	got := s.waitChallenge(t, id, "delivery_status failed", func(c map[string]any) bool { return c["delivery_status"] == "failed" })
	if e := csStr(got, "delivery_error"); !strings.Contains(e, "21211") || strings.Contains(e, "491570") {
		t.Errorf("delivery_error %q: want the Twilio code 21211 and no phone number", e)
	}
	if got["status"] != "pending" {
		t.Errorf("challenge after a failed delivery: %v", got)
	}
	if st := csTwilioStatuses(s.Twilio, num); !slices.Equal(st, []int{400}) {
		t.Errorf("Twilio answered %v, want exactly one request ([400])", st)
	}
	// Later messages still flow, and the failed one was not retried.
	s.enrollSMS(t, "ned", csPhone(161))
	if st := csTwilioStatuses(s.Twilio, num); !slices.Equal(st, []int{400}) {
		t.Errorf("Twilio answered %v for the invalid number, want exactly one request", st)
	}
}

// TestSMSStatusWebhook: Twilio's signed status callback records the
// delivery on the challenge; an unsigned or mis-signed one is refused.
func TestSMSStatusWebhook(t *testing.T) {
	t.Parallel()
	s := csNewSite(t, apptest.Options{Redis: apptest.Single})
	num := csPhone(162)
	s.Must(t, 200, "PUT", "/v1/users/ola", s.AppKey, map[string]any{"email": "ola@example.test"})
	id := csStr(csObj(s.Must(t, 201, "POST", "/v1/users/ola/sms", s.AppKey, map[string]any{"phone": num}), "challenge"), "id")
	msg := csWaitSMS(t, s.Twilio, num, 1)
	callback := strings.TrimRight(s.App.Config.PublicURL, "/") + "/v1/webhooks/twilio/status"
	if msg.StatusCallback != callback {
		t.Errorf("StatusCallback %q, want %q", msg.StatusCallback, callback)
	}
	s.waitChallenge(t, id, "delivery_status sent", func(c map[string]any) bool { return c["delivery_status"] == "sent" })

	report := func(status, errorCode string) url.Values {
		v := url.Values{"MessageSid": {msg.SID}, "SmsSid": {msg.SID}, "AccountSid": {s.Twilio.AccountSID()},
			"From": {msg.From}, "To": {num}, "MessageStatus": {status}, "SmsStatus": {status}, "ApiVersion": {"2010-04-01"}}
		if errorCode != "" {
			v.Set("ErrorCode", errorCode)
		}
		return v
	}
	token := s.Twilio.AuthToken()

	delivered := report("delivered", "")
	sig := csTwilioSignature(token, callback, delivered)
	if v := twclient.NewRequestValidator(token); !v.Validate(callback, csFirstValues(delivered), sig) {
		t.Fatal("twilio-go does not accept the test's signature")
	}
	if r := csPostForm(t, s.URL, delivered, sig); r.status != 204 {
		t.Errorf("signed delivered report: %d %s, want 204", r.status, r.raw)
	}
	if got := s.Must(t, 200, "GET", "/v1/challenges/"+id, s.AppKey, nil); got["delivery_status"] != "delivered" {
		t.Errorf("challenge after the delivered report: %v", got)
	}

	failed := report("undelivered", "30003")
	before := s.Must(t, 200, "GET", "/v1/challenges/"+id, s.AppKey, nil)
	for name, sig := range map[string]string{
		"unsigned":                  "",
		"signed with another token": csTwilioSignature("ffffffffffffffffffffffffffffffff", callback, failed),
		"signature of other params": csTwilioSignature(token, callback, delivered),
		"signed for another URL":    csTwilioSignature(token, "https://evil.example.test/v1/webhooks/twilio/status", failed),
	} {
		r := csPostForm(t, s.URL, failed, sig)
		if r.status != 403 {
			t.Errorf("%s report: %d %s, want 403", name, r.status, r.raw)
		}
	}
	if got := s.Must(t, 200, "GET", "/v1/challenges/"+id, s.AppKey, nil); !reflect.DeepEqual(got, before) {
		t.Errorf("a refused report changed the challenge from %v to %v", before, got)
	}

	// A signed failure report is recorded with Twilio's error code.
	if r := csPostForm(t, s.URL, failed, csTwilioSignature(token, callback, failed)); r.status != 204 {
		t.Errorf("signed undelivered report: %d %s, want 204", r.status, r.raw)
	}
	if got := s.Must(t, 200, "GET", "/v1/challenges/"+id, s.AppKey, nil); got["delivery_status"] != "undelivered" ||
		!strings.Contains(csStr(got, "delivery_error"), "30003") {
		t.Errorf("challenge after the undelivered report: %v", got)
	}
}

// TestSMSLimits: the per-number hourly cap and the tenant's kill switch
// refuse a code before anything is sent.
func TestSMSLimits(t *testing.T) {
	t.Parallel()

	t.Run("per number", func(t *testing.T) {
		t.Parallel()
		s := csNewSite(t, apptest.Options{Redis: apptest.Single, Configure: func(c *config.Config) { c.Limits.SMSPerNumberHour = 2 }})
		s.everyLogin(t)
		num, other := csPhone(170), csPhone(171)
		s.enrollSMS(t, "pia", num) // the first SMS to num
		s.Must(t, 200, "PUT", "/v1/users/quin", s.AppKey, map[string]any{"email": "quin@example.test"})
		s.Must(t, 201, "POST", "/v1/users/quin/sms", s.AppKey, map[string]any{"phone": num}) // the second
		csWaitSMS(t, s.Twilio, num, 2)

		// The third code to that number, whatever asks for it, is refused.
		s.Must(t, 200, "PUT", "/v1/users/rex", s.AppKey, map[string]any{"email": "rex@example.test"})
		r := s.Do(t, "POST", "/v1/users/rex/sms", s.AppKey, map[string]any{"phone": num})
		csWantError(t, r, 429, "rate_limited")
		csCheckRetryAfter(t, r, time.Hour)
		if l := csErrField(r, "limit"); l != "number" {
			t.Errorf("limit %v, want number", l)
		}
		r = s.Do(t, "POST", "/v1/logins/evaluate", s.AppKey, map[string]any{"user_id": "pia", "ip": csIPAU, "user_agent": csUA, "device_id": "laptop"})
		csWantError(t, r, 429, "rate_limited")
		csCheckRetryAfter(t, r, time.Hour)

		// Another number is not affected; once its code has come, no third
		// one went to the capped number.
		s.enrollSMS(t, "rex", other)
		if n := len(csSMSTo(s.Twilio, num)); n != 2 {
			t.Errorf("%d SMS to the capped number, want 2", n)
		}
	})

	t.Run("resends refused for the cooldown send nothing and use up nothing", func(t *testing.T) {
		t.Parallel()
		const cooldown = time.Second
		s := csNewSite(t, apptest.Options{Redis: apptest.Single, Configure: func(c *config.Config) {
			c.Limits.SMSPerNumberHour = 2
			c.Codes.ResendCooldown = cooldown
		}})
		num := csPhone(175)
		s.Must(t, 200, "PUT", "/v1/users/vic", s.AppKey, map[string]any{"email": "vic@example.test"})
		id := csStr(csObj(s.Must(t, 201, "POST", "/v1/users/vic/sms", s.AppKey, map[string]any{"phone": num}), "challenge"), "id")
		csWaitSMS(t, s.Twilio, num, 1)
		for range 3 { // an impatient user
			r := s.resend(t, id)
			csWantError(t, r, 429, "rate_limited")
			if l, ok := csErrorOf(r.Body)["limit"]; ok {
				t.Errorf("a resend inside the cooldown tripped the %v limit: %s", l, r.Raw)
			}
		}
		// Past the cooldown the second SMS of the hour is still allowed.
		r := s.resend(t, id)
		deadline := time.Now().Add(csPatience)
		for r.Status == 429 && csErrorOf(r.Body)["limit"] == nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			r = s.resend(t, id)
		}
		if r.Status != 202 {
			t.Fatalf("resend after the cooldown, the second SMS of the hour to the number: %d %s, want 202", r.Status, r.Raw)
		}
		csWaitSMS(t, s.Twilio, num, 2)
	})

	t.Run("kill switch", func(t *testing.T) {
		t.Parallel()
		s := csNewSite(t, apptest.Options{Redis: apptest.Single})
		s.everyLogin(t)
		num, pending, fresh := csPhone(180), csPhone(181), csPhone(182)
		s.enrollSMS(t, "sam", num)
		s.Must(t, 200, "PUT", "/v1/users/tia", s.AppKey, map[string]any{"email": "tia@example.test"})
		id := csStr(csObj(s.Must(t, 201, "POST", "/v1/users/tia/sms", s.AppKey, map[string]any{"phone": pending}), "challenge"), "id")
		csWaitSMS(t, s.Twilio, pending, 1)

		pol := s.Must(t, 200, "PUT", "/v1/admin/policy", s.ManagerKey, map[string]any{"sms_disabled": true})
		if pol["sms_disabled"] != true {
			t.Fatalf("policy after the kill switch: %v", pol)
		}
		s.Must(t, 200, "PUT", "/v1/users/uma", s.AppKey, map[string]any{"email": "uma@example.test"})
		csWantError(t, s.Do(t, "POST", "/v1/users/uma/sms", s.AppKey, map[string]any{"phone": fresh}), 503, "sms_disabled")
		csWantError(t, s.Do(t, "POST", "/v1/challenges/"+id+"/resend", s.AppKey, nil), 503, "sms_disabled")
		csWantError(t, s.Do(t, "POST", "/v1/logins/evaluate", s.AppKey,
			map[string]any{"user_id": "sam", "ip": csIPAU, "user_agent": csUA, "device_id": "laptop"}), 503, "sms_disabled")

		// Switched back on, SMS flow again; none of the refused ones went.
		s.Must(t, 200, "PUT", "/v1/admin/policy", s.ManagerKey, map[string]any{"sms_disabled": false})
		s.enrollSMS(t, "uma", fresh)
		for to, want := range map[string]int{num: 1, pending: 1, fresh: 1} {
			if n := len(csSMSTo(s.Twilio, to)); n != want {
				t.Errorf("%d SMS to %s, want %d", n, to, want)
			}
		}
	})
}

// csTwilioStatuses lists the HTTP statuses the fake Twilio answered to the
// requests for to, oldest first.
func csTwilioStatuses(tw *twiliotest.Server, to string) []int {
	var out []int
	for _, r := range tw.Requests() {
		if r.Form.Get("To") == to {
			out = append(out, r.Status)
		}
	}
	return out
}

// csTwilioSignature signs a webhook as Twilio does: base64 of the
// HMAC-SHA1, keyed with the auth token, of the URL followed by every
// parameter's name and value in name order.
func csTwilioSignature(authToken, u string, params url.Values) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(u)
	for _, k := range keys {
		b.WriteString(k)
		b.WriteString(params.Get(k))
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func csFirstValues(v url.Values) map[string]string {
	m := make(map[string]string, len(v))
	for k := range v {
		m[k] = v.Get(k)
	}
	return m
}

// csPostForm posts a status callback as Twilio does (a form, the signature
// in X-Twilio-Signature, no bearer key).
func csPostForm(t *testing.T, base string, form url.Values, signature string) csAnswer {
	t.Helper()
	req, err := http.NewRequest("POST", base+"/v1/webhooks/twilio/status", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", "TwilioProxy/1.1")
	if signature != "" {
		req.Header.Set("X-Twilio-Signature", signature)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	a := csAnswer{status: res.StatusCode}
	a.raw, _ = io.ReadAll(res.Body)
	_ = json.Unmarshal(a.raw, &a.body)
	return a
}

var csSixDigits = regexp.MustCompile(`\b\d{6}\b`)

// csMailCode waits for the n-th verification-code mail to addr and returns
// its code.
func csMailCode(t *testing.T, srv *smtptest.Server, addr string, n int) string {
	t.Helper()
	deadline := time.Now().Add(csPatience)
	for {
		var codes []smtptest.Message
		for _, m := range srv.Messages() {
			if slices.Contains(m.To, addr) && strings.Contains(m.Subject, "verification code") {
				codes = append(codes, m)
			}
		}
		if len(codes) >= n {
			code := csSixDigits.FindString(codes[n-1].Text)
			if code == "" {
				t.Fatalf("mail %q to %s has no code: %q", codes[n-1].Subject, addr, codes[n-1].Text)
			}
			return code
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d code mails to %s within %v, want %d", len(codes), addr, csPatience, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSMSLimitInTheLoginWrite: a login challenge's SMS limits are taken in
// the login's one write. When one refuses, the code job the write queued
// is never sent (the delivery worker waits for the limits' verdicts) and
// the challenge moves to the user's next factor — on one Redis and on a
// cluster, where the limits and the write run on different nodes.
func TestSMSLimitInTheLoginWrite(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{apptest.Single, apptest.Cluster} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s := csNewSite(t, apptest.Options{Redis: kind, Configure: func(c *config.Config) { c.Limits.SMSPerNumberHour = 2 }})
			s.everyLogin(t)
			const user = "wes"
			addr, num := user+"@example.test", csPhone(190)

			// E-mail first, then the phone behind a step-up by e-mail: SMS 1.
			s.Must(t, 200, "PUT", "/v1/users/"+user, s.AppKey, map[string]any{"email": addr})
			ch := csObj(s.Must(t, 201, "POST", "/v1/users/"+user+"/email-factor", s.AppKey, nil), "challenge")
			s.Must(t, 200, "POST", "/v1/challenges/"+csStr(ch, "id")+"/verify", s.AppKey, map[string]any{"code": csMailCode(t, s.SMTP, addr, 1)})
			ch = csObj(s.Must(t, 201, "POST", "/v1/users/"+user+"/sms", s.AppKey, map[string]any{"phone": num}), "challenge")
			res := s.Must(t, 200, "POST", "/v1/challenges/"+csStr(ch, "id")+"/verify", s.AppKey, map[string]any{"code": csMailCode(t, s.SMTP, addr, 2)})
			next := csObj(csObj(res, "result"), "next_challenge")
			if next["channel"] != "sms" {
				t.Fatalf("step-up verified: %v, want the new phone's challenge", res)
			}
			s.Must(t, 200, "POST", "/v1/challenges/"+csStr(next, "id")+"/verify", s.AppKey, map[string]any{"code": csWaitSMS(t, s.Twilio, num, 1).Code()})

			// The first login's code is the number's second SMS of the hour.
			ev := s.evaluate(t, user, csIPAU, "laptop", "")
			if c := csObj(ev, "challenge"); ev["decision"] != "challenge" || c["channel"] != "sms" {
				t.Fatalf("first login: %v, want an SMS challenge", ev)
			}
			csWaitSMS(t, s.Twilio, num, 2)

			// The next one's SMS is refused by the number's limit in the
			// login's write: the challenge moves to e-mail, and its code
			// works.
			ev = s.evaluate(t, user, csIPAU, "laptop", "")
			c := csObj(ev, "challenge")
			if ev["decision"] != "challenge" || c["channel"] != "email" || c["status"] != "pending" {
				t.Fatalf("login past the number's limit: %v, want an e-mail challenge", ev)
			}
			res = s.Must(t, 200, "POST", "/v1/challenges/"+csStr(c, "id")+"/verify", s.AppKey, map[string]any{"code": csMailCode(t, s.SMTP, addr, 3)})
			if res["verified"] != true || csObj(res, "result")["login_id"] != ev["login_id"] {
				t.Fatalf("verify the fallback: %v", res)
			}
			// Whatever the workers got to meanwhile, the refused code was
			// not sent.
			time.Sleep(300 * time.Millisecond)
			if n := len(csSMSTo(s.Twilio, num)); n != 2 {
				t.Errorf("%d SMS to the number, want 2 (the third was refused)", n)
			}
		})
	}
}
