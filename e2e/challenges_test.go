package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/internal/apptest"
	"github.com/stepup-auth/stepup/internal/geoiptest"
	"github.com/stepup-auth/stepup/internal/twiliotest"
)

// The login contexts. The addresses are the documentation ranges that the
// demo GeoIP table (geoiptest.DemoNetworks) places in four countries.
const (
	csIPAU = "192.0.2.10"   // 192.0.2.0/24 = AU
	csIPGB = "198.51.100.7" // 198.51.100.0/24 = GB
	csIPUS = "203.0.113.5"  // 203.0.113.0/24 = US
	csIPDE = "2001:db8::5"  // 2001:db8::/32 = DE
	csUA   = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
)

// csPatience bounds every wait for an asynchronous outcome (an SMS, a
// delivery status); the tests poll and never sleep for a fixed time.
const csPatience = 20 * time.Second

// phone returns a number of Australia's fictional mobile range
// +61 491 570 xxx, which libphonenumber accepts as a mobile.
func csPhone(n int) string { return fmt.Sprintf("+61491570%03d", n) }

// TestChallengeFlow walks the main story on a single Redis and on
// a Redis Cluster: enrol by SMS, a familiar login goes through, a login from
// another country on a new device is challenged by SMS, the verified
// context is learned, and a remembered device skips the challenge.
func TestChallengeFlow(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{apptest.Single, apptest.Cluster} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s := csNewSite(t, apptest.Options{Redis: kind})
			const user = "alice"
			num := csPhone(156)

			s.Must(t, 200, "PUT", "/v1/users/"+user, s.AppKey, map[string]any{
				"email": "alice@example.test", "display_name": "Alice", "locale": "en-AU"})

			// A first login, before 2FA, is allowed and learned.
			ev := s.evaluate(t, user, csIPAU, "laptop", "")
			if ev["decision"] != "allow" || !slices.Contains(csSignalNames(ev), "no_history") {
				t.Fatalf("first login: %v", ev)
			}

			// Enrolment by SMS: the code comes from (fake) Twilio.
			st := s.Must(t, 201, "POST", "/v1/users/"+user+"/sms", s.AppKey, map[string]any{"phone": num})
			ch := csObj(st, "challenge")
			if ch["purpose"] != "enroll_sms" || ch["channel"] != "sms" || ch["status"] != "pending" ||
				!strings.HasSuffix(csStr(ch, "destination"), "156") || strings.Contains(csStr(ch, "destination"), "491570") {
				t.Fatalf("SMS enrolment: %v", st)
			}
			code := csWaitSMS(t, s.Twilio, num, 1).Code()
			res := s.Must(t, 200, "POST", "/v1/challenges/"+csStr(ch, "id")+"/verify", s.AppKey, map[string]any{"code": code})
			if res["verified"] != true || res["purpose"] != "enroll_sms" || len(csDistinct(csObj(res, "result")["backup_codes"])) != 10 {
				t.Fatalf("enrolment verify: %v, want 10 distinct backup codes", res)
			}
			u := s.Must(t, 200, "GET", "/v1/users/"+user, s.AppKey, nil)
			if u["enrolled"] != true || u["backup_codes_left"] != 10.0 || !slices.Equal(csFactorChannels(u), []string{"sms"}) {
				t.Fatalf("user after enrolment: %v", u)
			}

			// A familiar login is let through.
			ev = s.evaluate(t, user, csIPAU, "laptop", "")
			if ev["decision"] != "allow" || ev["challenge"] != nil {
				t.Fatalf("familiar login: %v", ev)
			}

			// Another country and a new device: challenged by SMS.
			ev = s.evaluate(t, user, csIPGB, "phone", "")
			ch = csObj(ev, "challenge")
			if ev["decision"] != "challenge" || ch["channel"] != "sms" || ch["purpose"] != "login" || ch["attempts_left"] != 5.0 {
				t.Fatalf("suspicious login: %v", ev)
			}
			if sig, ok := csSignal(ev, "new_country"); !ok || sig["detail"] != "GB" {
				t.Errorf("signals %v: want new_country GB", csObj(ev, "risk")["signals"])
			}
			if _, ok := csSignal(ev, "new_device"); !ok {
				t.Errorf("signals %v: want new_device", csObj(ev, "risk")["signals"])
			}
			id := csStr(ch, "id")
			sms := csWaitSMS(t, s.Twilio, num, 2)
			if !strings.Contains(sms.Body, "verification code to sign in.") {
				t.Errorf("login SMS %q does not say it is to sign in", sms.Body)
			}
			code = sms.Code()
			got := s.waitChallenge(t, id, "delivery_status sent", func(c map[string]any) bool { return c["delivery_status"] == "sent" })
			if got["status"] != "pending" || got["id"] != id || got["attempts_left"] != 5.0 || got["purpose"] != "login" {
				t.Errorf("GET challenge before verify: %v", got)
			}
			res = s.Must(t, 200, "POST", "/v1/challenges/"+id+"/verify", s.AppKey, map[string]any{"code": code, "remember_device": true})
			token := csStr(csObj(res, "result"), "device_token")
			if res["verified"] != true || res["purpose"] != "login" || csObj(res, "result")["login_id"] != ev["login_id"] || token == "" {
				t.Fatalf("login verify: %v", res)
			}
			got = s.Must(t, 200, "GET", "/v1/challenges/"+id, s.AppKey, nil)
			if got["status"] != "verified" || got["delivery_status"] != "sent" {
				t.Errorf("GET challenge after verify: %v", got)
			}

			// The verified context was learned: the same login is allowed.
			ev = s.evaluate(t, user, csIPGB, "phone", "")
			if ev["decision"] != "allow" {
				t.Errorf("same context after a verified challenge: %v", ev)
			}

			// With every login challenged, the remembered device still
			// skips the challenge — and only with its token.
			s.Must(t, 200, "PUT", "/v1/admin/policy", s.ManagerKey, map[string]any{"challenge": "every_login"})
			ev = s.evaluate(t, user, csIPGB, "phone", "")
			if ev["decision"] != "challenge" {
				t.Fatalf("every_login without the device token: %v", ev)
			}
			csWaitSMS(t, s.Twilio, num, 3)
			ev = s.evaluate(t, user, csIPGB, "phone", token)
			if ev["decision"] != "allow" || ev["challenge"] != nil || !slices.Contains(csSignalNames(ev), "remembered_device") {
				t.Errorf("every_login with the device token: %v", ev)
			}
			// The token is bound to its device.
			ev = s.evaluate(t, user, csIPGB, "tablet", token)
			if ev["decision"] != "challenge" || slices.Contains(csSignalNames(ev), "remembered_device") {
				t.Errorf("the token on another device: %v", ev)
			}
		})
	}
}

// TestChallengeRules checks what every challenge obeys, one rule per
// subtest, each on its own stepupd over a single Redis.
func TestChallengeRules(t *testing.T) {
	t.Parallel()

	t.Run("wrong codes", func(t *testing.T) {
		t.Parallel()
		s := csNewSite(t, apptest.Options{Redis: apptest.Single})
		s.everyLogin(t)
		num := csPhone(201)
		s.enrollSMS(t, "bob", num)
		id, code := s.loginChallenge(t, "bob", num)
		bad := csWrongCode(code)

		for left := 4; left >= 1; left-- {
			r := s.Do(t, "POST", "/v1/challenges/"+id+"/verify", s.AppKey, map[string]any{"code": bad})
			csWantError(t, r, 422, "invalid_code")
			if n := csErrField(r, "attempts_left"); n != float64(left) {
				t.Errorf("attempts_left %v, want %d", n, left)
			}
		}
		csWantError(t, s.Do(t, "POST", "/v1/challenges/"+id+"/verify", s.AppKey, map[string]any{"code": bad}), 423, "too_many_attempts")
		// The challenge is dead: the right code is refused too.
		csWantError(t, s.Do(t, "POST", "/v1/challenges/"+id+"/verify", s.AppKey, map[string]any{"code": code}), 423, "too_many_attempts")
		if got := s.Must(t, 200, "GET", "/v1/challenges/"+id, s.AppKey, nil); got["status"] != "locked" || got["attempts_left"] != 0.0 {
			t.Errorf("GET locked challenge: %v", got)
		}
	})

	t.Run("50 concurrent wrong codes", func(t *testing.T) {
		t.Parallel()
		s := csNewSite(t, apptest.Options{Redis: apptest.Single})
		s.everyLogin(t)
		num := csPhone(202)
		s.enrollSMS(t, "carl", num)
		id, code := s.loginChallenge(t, "carl", num)
		bad := csWrongCode(code)

		const n = 50
		answers := csConcurrently(n, func(int) csAnswer {
			return csCall(s.URL, "POST", "/v1/challenges/"+id+"/verify", s.AppKey, map[string]any{"code": bad})
		})
		var compared []float64 // attempts_left of each 422
		for _, a := range answers {
			switch {
			case a.err != nil:
				t.Fatalf("verify: %v", a.err)
			case a.status == 422 && a.code() == "invalid_code":
				compared = append(compared, a.field("attempts_left"))
			case a.status == 423 && a.code() == "too_many_attempts":
			default:
				t.Errorf("verify answered %d %s", a.status, a.raw)
			}
		}
		// Of 5 attempts the first four answer 422 and the fifth locks.
		if len(compared) > 4 || len(csDistinct(compared)) != len(compared) {
			t.Errorf("%d answers of invalid_code with attempts_left %v: want at most 4, each a different count", len(compared), compared)
		}
		got := s.Must(t, 200, "GET", "/v1/challenges/"+id, s.AppKey, nil)
		if got["status"] != "locked" || got["attempts_left"] != 0.0 {
			t.Errorf("GET after the storm: %v", got)
		}
		csWantError(t, s.Do(t, "POST", "/v1/challenges/"+id+"/verify", s.AppKey, map[string]any{"code": code}), 423, "too_many_attempts")
		// The stored counter never passes the maximum by more than the
		// one attempt that found the challenge exhausted.
		c, ok, err := s.App.Store.Challenge(t.Context(), s.Tenant, id)
		if err != nil || !ok {
			t.Fatalf("read challenge: %v %v", ok, err)
		}
		if c.Status != "locked" || c.Attempts > c.MaxAttempts+1 {
			t.Errorf("stored challenge: status %s, attempts %d of %d", c.Status, c.Attempts, c.MaxAttempts)
		}
		// Each compared wrong code counts as a failed challenge; the next
		// login's velocity signal reports how many were compared.
		ev := s.evaluate(t, "carl", csIPAU, "laptop", "")
		sig, ok := csSignal(ev, "recent_failed_challenges")
		if !ok {
			t.Fatalf("no recent_failed_challenges signal after the storm: %v", ev)
		}
		var failed int // the detail reads "5 failed challenges"
		_, _ = fmt.Sscan(csStr(sig, "detail"), &failed)
		if failed < 1 || failed > 5 {
			t.Errorf("%s: want at most 5 codes compared of %d sent", sig["detail"], n)
		}
		t.Logf("%d wrong codes at once: %d answered invalid_code, %d compared, stored attempts %d of %d",
			n, len(compared), failed, c.Attempts, c.MaxAttempts)
	})

	t.Run("two concurrent right codes", func(t *testing.T) {
		t.Parallel()
		s := csNewSite(t, apptest.Options{Redis: apptest.Single})
		s.everyLogin(t)
		num := csPhone(203)
		s.enrollSMS(t, "dora", num)
		for round := range 3 {
			id, code := s.loginChallenge(t, "dora", num)
			answers := csConcurrently(2, func(int) csAnswer {
				return csCall(s.URL, "POST", "/v1/challenges/"+id+"/verify", s.AppKey, map[string]any{"code": code})
			})
			wins := 0
			for _, a := range answers {
				switch {
				case a.err != nil:
					t.Fatalf("verify: %v", a.err)
				case a.status == 200:
					wins++
				case a.status == 409 && a.code() == "challenge_used":
				default:
					t.Errorf("round %d: the losing verify answered %d %s, want 409 challenge_used", round, a.status, a.raw)
				}
			}
			if wins != 1 {
				t.Errorf("round %d: %d verifies of one code succeeded, want exactly 1", round, wins)
			}
		}
	})

	t.Run("expired", func(t *testing.T) {
		t.Parallel()
		s := csNewSite(t, apptest.Options{Redis: apptest.Single, Configure: func(c *config.Config) { c.Codes.TTL = 2 * time.Second }})
		num := csPhone(204)
		s.Must(t, 200, "PUT", "/v1/users/erin", s.AppKey, map[string]any{"email": "erin@example.test"})
		ch := csObj(s.Must(t, 201, "POST", "/v1/users/erin/sms", s.AppKey, map[string]any{"phone": num}), "challenge")
		id := csStr(ch, "id")
		code := csWaitSMS(t, s.Twilio, num, 1).Code()
		s.waitChallenge(t, id, "status expired", func(c map[string]any) bool { return c["status"] == "expired" })
		csWantError(t, s.Do(t, "POST", "/v1/challenges/"+id+"/verify", s.AppKey, map[string]any{"code": code}), 410, "challenge_expired")
		if u := s.Must(t, 200, "GET", "/v1/users/erin", s.AppKey, nil); u["enrolled"] != false {
			t.Errorf("an expired enrolment enrolled the user: %v", u)
		}
	})

	t.Run("backup code", func(t *testing.T) {
		t.Parallel()
		s := csNewSite(t, apptest.Options{Redis: apptest.Single})
		s.everyLogin(t)
		num := csPhone(205)
		codes := s.enrollSMS(t, "finn", num)

		id, _ := s.loginChallenge(t, "finn", num)
		res := s.Must(t, 200, "POST", "/v1/challenges/"+id+"/verify", s.AppKey, map[string]any{"code": codes[0]})
		if res["verified"] != true || res["purpose"] != "login" || csObj(res, "result")["backup_codes_left"] != 9.0 {
			t.Errorf("login with a backup code: %v", res)
		}
		// Single use: the same code fails on the next challenge.
		id, _ = s.loginChallenge(t, "finn", num)
		r := s.Do(t, "POST", "/v1/challenges/"+id+"/verify", s.AppKey, map[string]any{"code": codes[0]})
		csWantError(t, r, 422, "invalid_code")
		res = s.Must(t, 200, "POST", "/v1/challenges/"+id+"/verify", s.AppKey, map[string]any{"code": codes[1]})
		if csObj(res, "result")["backup_codes_left"] != 8.0 {
			t.Errorf("second backup code: %v", res)
		}
		if u := s.Must(t, 200, "GET", "/v1/users/finn", s.AppKey, nil); u["backup_codes_left"] != 8.0 {
			t.Errorf("user after two backup codes: %v", u)
		}
	})

	t.Run("resend", func(t *testing.T) {
		t.Parallel()
		const cooldown = time.Second
		s := csNewSite(t, apptest.Options{Redis: apptest.Single, Configure: func(c *config.Config) { c.Codes.ResendCooldown = cooldown }})
		num := csPhone(206)
		s.Must(t, 200, "PUT", "/v1/users/gail", s.AppKey, map[string]any{"email": "gail@example.test"})
		id := csStr(csObj(s.Must(t, 201, "POST", "/v1/users/gail/sms", s.AppKey, map[string]any{"phone": num}), "challenge"), "id")
		first := csWaitSMS(t, s.Twilio, num, 1).Code()

		// Inside the cooldown a resend is refused with Retry-After; once
		// it has passed, the resend is accepted.
		var r apptest.Response
		deadline := time.Now().Add(csPatience)
		for r = s.resend(t, id); r.Status == 429 && time.Now().Before(deadline); r = s.resend(t, id) {
			csCheckRetryAfter(t, r, cooldown)
			time.Sleep(50 * time.Millisecond)
		}
		if r.Status != 202 || r.Body["id"] != id || r.Body["status"] != "pending" {
			t.Fatalf("resend after the cooldown: %d %s", r.Status, r.Raw)
		}
		r = s.resend(t, id)
		csWantError(t, r, 429, "rate_limited")
		csCheckRetryAfter(t, r, cooldown)

		second := csWaitSMS(t, s.Twilio, num, 2).Code()
		if n := len(csSMSTo(s.Twilio, num)); n != 2 {
			t.Errorf("%d SMS after one accepted resend, want 2", n)
		}
		if second != first {
			// The resent code replaces the first one.
			csWantError(t, s.Do(t, "POST", "/v1/challenges/"+id+"/verify", s.AppKey, map[string]any{"code": first}), 422, "invalid_code")
		}
		s.Must(t, 200, "POST", "/v1/challenges/"+id+"/verify", s.AppKey, map[string]any{"code": second})
	})

	t.Run("a code held up by the provider is not sent after a resend replaced it", func(t *testing.T) {
		t.Parallel()
		s := csNewSite(t, apptest.Options{Redis: apptest.Single, Configure: func(c *config.Config) {
			c.Codes.ResendCooldown = 200 * time.Millisecond
			c.Delivery.BackoffBase, c.Delivery.BackoffMax, c.Delivery.MaxAttempts = 100*time.Millisecond, 300*time.Millisecond, 50
		}})
		num := csPhone(209)
		s.Twilio.ReplyAlways(&twiliotest.Reply{Status: 503, Code: 20503, Message: "Service unavailable"})
		id := csStr(csObj(s.Must(t, 201, "POST", "/v1/users/hal/sms", s.AppKey, map[string]any{"phone": num}), "challenge"), "id")
		deadline := time.Now().Add(csPatience)
		for len(s.Twilio.Requests()) == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		var r apptest.Response
		for r = s.resend(t, id); r.Status == 429 && time.Now().Before(deadline); r = s.resend(t, id) {
			time.Sleep(50 * time.Millisecond)
		}
		if r.Status != 202 {
			t.Fatalf("resend: %d %s", r.Status, r.Raw)
		}
		time.Sleep(400 * time.Millisecond) // both jobs fail at least once more
		s.Twilio.ReplyAlways(nil)

		code := csWaitSMS(t, s.Twilio, num, 1).Code()
		time.Sleep(time.Second) // every retry of the first send's job is due by now
		if n := len(csSMSTo(s.Twilio, num)); n != 1 {
			t.Errorf("%d SMS once the provider was back, want 1: the first code no longer works", n)
		}
		s.Must(t, 200, "POST", "/v1/challenges/"+id+"/verify", s.AppKey, map[string]any{"code": code})
	})

	t.Run("other tenant", func(t *testing.T) {
		t.Parallel()
		s := csNewSite(t, apptest.Options{Redis: apptest.Single})
		_, otherApp, _ := s.Env.Tenant(t, "globex")
		num := csPhone(207)
		s.Must(t, 200, "PUT", "/v1/users/hana", s.AppKey, map[string]any{"email": "hana@example.test"})
		id := csStr(csObj(s.Must(t, 201, "POST", "/v1/users/hana/sms", s.AppKey, map[string]any{"phone": num}), "challenge"), "id")
		code := csWaitSMS(t, s.Twilio, num, 1).Code()
		unknown := id[:len(id)-1] + map[bool]string{true: "b", false: "a"}[strings.HasSuffix(id, "a")]

		for _, c := range []struct {
			method, suffix string
			body           any
		}{
			{"GET", "", nil},
			{"POST", "/verify", map[string]any{"code": code}},
			{"POST", "/resend", nil},
			{"POST", "/switch", map[string]any{"channel": "sms"}},
		} {
			theirs := s.Do(t, c.method, "/v1/challenges/"+id+c.suffix, otherApp, c.body)
			none := s.Do(t, c.method, "/v1/challenges/"+unknown+c.suffix, otherApp, c.body)
			csWantError(t, theirs, 404, "challenge_not_found")
			if !reflect.DeepEqual(theirs.Body, none.Body) || theirs.Status != none.Status {
				t.Errorf("%s %s: another tenant's challenge answers %d %s, an unknown one %d %s",
					c.method, c.suffix, theirs.Status, theirs.Raw, none.Status, none.Raw)
			}
		}
		// Nothing the other tenant did counted against the challenge.
		if got := s.Must(t, 200, "GET", "/v1/challenges/"+id, s.AppKey, nil); got["status"] != "pending" || got["attempts_left"] != 5.0 {
			t.Errorf("challenge after the other tenant's tries: %v", got)
		}
		s.Must(t, 200, "POST", "/v1/challenges/"+id+"/verify", s.AppKey, map[string]any{"code": code})
	})

	t.Run("what a login teaches", func(t *testing.T) {
		t.Parallel()
		s := csNewSite(t, apptest.Options{Redis: apptest.Single})
		num := csPhone(208)
		s.Must(t, 200, "PUT", "/v1/users/ivan", s.AppKey, map[string]any{"email": "ivan@example.test"})
		if ev := s.evaluate(t, "ivan", csIPAU, "laptop", ""); ev["decision"] != "allow" {
			t.Fatalf("first login: %v", ev)
		}
		s.enrollSMS(t, "ivan", num)

		// A challenge never verified teaches nothing.
		ev := s.evaluate(t, "ivan", csIPUS, "phone", "")
		if ev["decision"] != "challenge" {
			t.Fatalf("login from the US on a new device: %v", ev)
		}
		csWaitSMS(t, s.Twilio, num, 2)
		ev = s.evaluate(t, "ivan", csIPUS, "phone", "")
		if ev["decision"] != "challenge" {
			t.Fatalf("the same login after an unverified challenge: %v", ev)
		}
		if _, ok := csSignal(ev, "new_country"); !ok {
			t.Errorf("the unverified login was learned: %v", ev)
		}
		// A verified one, not remembered, does.
		code := csWaitSMS(t, s.Twilio, num, 3).Code()
		res := s.Must(t, 200, "POST", "/v1/challenges/"+csStr(csObj(ev, "challenge"), "id")+"/verify", s.AppKey, map[string]any{"code": code})
		if _, ok := csObj(res, "result")["device_token"]; ok {
			t.Errorf("a device token without remember_device: %v", res)
		}
		if ev := s.evaluate(t, "ivan", csIPUS, "phone", ""); ev["decision"] != "allow" {
			t.Errorf("the same login after a verified challenge: %v", ev)
		}
	})
}

// csSite is a running stepupd with a tenant and its keys.
type csSite struct {
	*apptest.Env
	Tenant, AppKey, ManagerKey string
}

// newSite starts a stepupd (see newEnv) with a fresh tenant.
func csNewSite(t *testing.T, o apptest.Options) csSite {
	t.Helper()
	env := csNewEnv(t, o)
	id, app, mgr := env.Tenant(t, "acme")
	return csSite{Env: env, Tenant: id, AppKey: app, ManagerKey: mgr}
}

// newEnv starts a stepupd whose GeoIP Country database is the demo table,
// whatever its Redis, and whose SMS limits are out of the way unless
// o.Configure sets them.
func csNewEnv(t *testing.T, o apptest.Options) *apptest.Env {
	t.Helper()
	geo := geoiptest.WriteFile(t, geoiptest.TypeCountry, geoiptest.DemoNetworks)
	configure := o.Configure
	o.Configure = func(c *config.Config) {
		c.GeoIP.CountryDB = geo
		c.Limits.SMSPerUserHour = 1000
		c.Limits.SMSPerNumberHour = 1000
		c.Limits.SMSPerCountryHour = 100000
		c.Limits.ChallengesPerIPHour = 1000
		if configure != nil {
			configure(c)
		}
	}
	return apptest.New(t, o)
}

// join starts a second stepupd on s's Redis, fake Twilio and SMTP server.
func (s csSite) join(t *testing.T, o apptest.Options) csSite {
	t.Helper()
	o.Redis = map[bool]string{true: apptest.Cluster, false: apptest.Single}[len(s.Addrs) > 1]
	o.RedisAddrs, o.Twilio, o.SMTP = s.Addrs, s.Twilio, s.SMTP
	return csSite{Env: csNewEnv(t, o), Tenant: s.Tenant, AppKey: s.AppKey, ManagerKey: s.ManagerKey}
}

// everyLogin makes the tenant challenge every login of an enrolled user.
func (s csSite) everyLogin(t *testing.T) {
	t.Helper()
	s.Must(t, 200, "PUT", "/v1/admin/policy", s.ManagerKey, map[string]any{"challenge": "every_login"})
}

// evaluate asks for a decision on a login; token is a remembered-device
// token or "".
func (s csSite) evaluate(t *testing.T, user, ip, device, token string) map[string]any {
	t.Helper()
	body := map[string]any{"user_id": user, "ip": ip, "user_agent": csUA, "device_id": device}
	if token != "" {
		body["device_token"] = token
	}
	return s.Must(t, 200, "POST", "/v1/logins/evaluate", s.AppKey, body)
}

// enrollSMS registers user with an e-mail address, enrols num (the first
// SMS the test sends it) and returns the backup codes.
func (s csSite) enrollSMS(t *testing.T, user, num string) []string {
	t.Helper()
	s.Must(t, 200, "PUT", "/v1/users/"+user, s.AppKey, map[string]any{"email": user + "@example.test"})
	before := len(csSMSTo(s.Twilio, num))
	ch := csObj(s.Must(t, 201, "POST", "/v1/users/"+user+"/sms", s.AppKey, map[string]any{"phone": num}), "challenge")
	code := csWaitSMS(t, s.Twilio, num, before+1).Code()
	res := s.Must(t, 200, "POST", "/v1/challenges/"+csStr(ch, "id")+"/verify", s.AppKey, map[string]any{"code": code})
	var codes []string
	for _, c := range csObj(res, "result")["backup_codes"].([]any) {
		codes = append(codes, c.(string))
	}
	if len(codes) != 10 {
		t.Fatalf("enrolment of %s gave %d backup codes: %v", user, len(codes), res)
	}
	return codes
}

// loginChallenge makes a login of user that is challenged on num, waits for
// its SMS and returns the challenge id and the code.
func (s csSite) loginChallenge(t *testing.T, user, num string) (id, code string) {
	t.Helper()
	before := len(csSMSTo(s.Twilio, num))
	ev := s.evaluate(t, user, csIPAU, "laptop", "")
	if ev["decision"] != "challenge" || csObj(ev, "challenge")["channel"] != "sms" {
		t.Fatalf("login of %s: %v, want an SMS challenge", user, ev)
	}
	return csStr(csObj(ev, "challenge"), "id"), csWaitSMS(t, s.Twilio, num, before+1).Code()
}

func (s csSite) resend(t *testing.T, id string) apptest.Response {
	t.Helper()
	return s.Do(t, "POST", "/v1/challenges/"+id+"/resend", s.AppKey, nil)
}

// waitChallenge polls GET /v1/challenges/{id} until ok accepts it.
func (s csSite) waitChallenge(t *testing.T, id, what string, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	var last map[string]any
	deadline := time.Now().Add(csPatience)
	for time.Now().Before(deadline) {
		last = s.Must(t, 200, "GET", "/v1/challenges/"+id, s.AppKey, nil)
		if ok(last) {
			return last
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("challenge %s: no %s within %v; last %v", id, what, csPatience, last)
	return nil
}

// smsTo returns the messages the fake Twilio accepted for to, oldest
// first.
func csSMSTo(tw *twiliotest.Server, to string) []twiliotest.Message {
	var out []twiliotest.Message
	for _, m := range tw.Messages() {
		if m.To == to {
			out = append(out, m)
		}
	}
	return out
}

// waitSMS waits until the fake Twilio accepted at least n messages for to
// and returns the n-th. Callers wait for each message before causing the
// next, so the n-th message is the n-th code sent.
func csWaitSMS(t *testing.T, tw *twiliotest.Server, to string, n int) twiliotest.Message {
	t.Helper()
	deadline := time.Now().Add(csPatience)
	for {
		if msgs := csSMSTo(tw, to); len(msgs) >= n {
			if msgs[n-1].Code() == "" {
				t.Fatalf("SMS to %s has no code: %q", to, msgs[n-1].Body)
			}
			return msgs[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d SMS to %s within %v, want %d", len(csSMSTo(tw, to)), to, csPatience, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wrongCode returns a six-digit code that is not code.
func csWrongCode(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}

// checkRetryAfter checks a 429's Retry-After header: whole seconds, at
// least one, at most max (rounded up), and equal to error.retry_after.
func csCheckRetryAfter(t *testing.T, r apptest.Response, max time.Duration) {
	t.Helper()
	ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
	limit := int((max + time.Second - 1) / time.Second)
	if err != nil || ra < 1 || ra > limit {
		t.Errorf("Retry-After %q, want 1..%d seconds: %s", r.Header.Get("Retry-After"), limit, r.Raw)
	}
	if v, ok := csErrorOf(r.Body)["retry_after"]; ok && v != float64(ra) {
		t.Errorf("error.retry_after %v differs from Retry-After %d", v, ra)
	}
}

// wantError checks an error answer's status and error.code.
func csWantError(t *testing.T, r apptest.Response, status int, code string) {
	t.Helper()
	if r.Status != status || csErrorOf(r.Body)["code"] != code {
		t.Errorf("answer %d %s, want %d %s", r.Status, r.Raw, status, code)
	}
}

func csErrorOf(body map[string]any) map[string]any {
	e, _ := body["error"].(map[string]any)
	return e
}

func csErrField(r apptest.Response, k string) any { return csErrorOf(r.Body)[k] }

func csObj(m map[string]any, k string) map[string]any {
	o, _ := m[k].(map[string]any)
	return o
}

func csStr(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// distinct returns the distinct values of a JSON array or a slice.
func csDistinct(v any) []any {
	var out []any
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		return nil
	}
	for i := range rv.Len() {
		x := rv.Index(i).Interface()
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

func csSignalNames(ev map[string]any) []string {
	var names []string
	for _, s := range csObj(ev, "risk")["signals"].([]any) {
		names = append(names, csStr(s.(map[string]any), "name"))
	}
	return names
}

// signal returns the login's signal of that name.
func csSignal(ev map[string]any, name string) (map[string]any, bool) {
	for _, s := range csObj(ev, "risk")["signals"].([]any) {
		if s := s.(map[string]any); s["name"] == name {
			return s, true
		}
	}
	return nil, false
}

func csFactorChannels(user map[string]any) []string {
	var cs []string
	for _, f := range user["factors"].([]any) {
		cs = append(cs, csStr(f.(map[string]any), "channel"))
	}
	return cs
}

// csAnswer is an HTTP answer received off the test's goroutine.
type csAnswer struct {
	status int
	body   map[string]any
	raw    []byte
	err    error
}

func (a csAnswer) code() string { return csStr(csErrorOf(a.body), "code") }
func (a csAnswer) field(k string) float64 {
	f, _ := csErrorOf(a.body)[k].(float64)
	return f
}

// call is Env.Do for other goroutines: it returns transport errors
// instead of failing the test.
func csCall(base, method, path, key string, body any) csAnswer {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return csAnswer{err: err}
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, base+path, r)
	if err != nil {
		return csAnswer{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return csAnswer{err: err}
	}
	defer res.Body.Close()
	a := csAnswer{status: res.StatusCode}
	a.raw, a.err = io.ReadAll(res.Body)
	if a.err == nil && len(a.raw) > 0 {
		a.err = json.Unmarshal(a.raw, &a.body)
	}
	return a
}

// concurrently runs n calls of f released at once and returns their
// answers in order.
func csConcurrently(n int, f func(i int) csAnswer) []csAnswer {
	out := make([]csAnswer, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			out[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return out
}
