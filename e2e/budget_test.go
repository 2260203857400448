package e2e_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/internal/apptest"
)

// bgClock is an engine clock the test moves instead of sleeping.
type bgClock struct {
	mu sync.Mutex
	t  time.Time
}

func newBGClock() *bgClock { return &bgClock{t: time.Now()} }

func (c *bgClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *bgClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// bgStart is lcStart with a movable clock, roomy SMS limits and configure
// applied last.
func bgStart(t *testing.T, clock *bgClock, configure func(*config.Config)) *lcEnv {
	t.Helper()
	return lcStart(t, apptest.Options{Clock: clock.Now, Configure: func(c *config.Config) {
		lcRoomyLimits(c)
		c.Limits.SMSPerCountryHour = 100000
		c.Limits.ChallengesPerIPHour = 1000
		if configure != nil {
			configure(c)
		}
	}})
}

// bgAlerts returns the tenant's audit events of an alert type.
func bgAlerts(t *testing.T, e *lcEnv, typ string) []any {
	t.Helper()
	evs, _ := e.Must(t, 200, "GET", "/v1/admin/events?type="+typ, e.Mgr, nil)["events"].([]any)
	return evs
}

// bgWantCapped checks a 429 with a Retry-After of at most an hour.
func bgWantCapped(t *testing.T, r apptest.Response, code string) {
	t.Helper()
	lcWantErr(t, r, 429, code)
	csCheckRetryAfter(t, r, time.Hour)
}

// TestAttemptBudgetAcrossSwitches is the attacker of issue 12, path 2: four
// wrong codes, switch to the other factor, four more, switch back… Without
// a budget per user every switch refilled the attempts. Now the wrong codes
// compared on one user are capped at limits.wrong_codes_per_user_hour, a
// switch keeps the attempts used, and past the cap even the right code is
// refused (429, without being compared) until the hour has passed.
func TestAttemptBudgetAcrossSwitches(t *testing.T) {
	t.Parallel()
	clock := newBGClock()
	const budget = 10
	e := bgStart(t, clock, func(c *config.Config) { c.Limits.WrongCodesPerUserHour = budget })
	e.policy(t, map[string]any{"challenge": "every_login", "manager_emails": []string{"it@acme.example"}})
	phone := lcPhone(611)
	e.enrollSMS(t, "mallory", phone)
	seen := len(e.Twilio.Messages())
	st := e.must(t, 201, "POST", "/v1/users/mallory/totp", nil)
	res := e.must(t, 200, "POST", "/v1/challenges/"+lcStr(lcObj(st, "challenge"), "id")+"/verify", map[string]any{"code": e.SMSCode(t, phone, seen)})
	app := lcCheckTOTPSetup(t, lcObj(res, "result"), "mallory")
	next := lcObj(lcObj(res, "result"), "next_challenge")
	e.must(t, 200, "POST", "/v1/challenges/"+lcStr(next, "id")+"/verify", map[string]any{"code": app.Code(t)})

	ch := e.loginChallenge(t, "mallory", lcLaptop)
	id, channel := lcStr(ch, "id"), lcStr(ch, "channel")
	compared, onThis := 0, 0
	var capped apptest.Response
	var lastSMS string
	for try := 0; try < 60 && capped.Status == 0; try++ {
		if onThis == 4 {
			// Switch before the challenge locks.
			to := map[string]string{"totp": "sms", "sms": "totp"}[channel]
			before := len(e.Twilio.Messages())
			r := e.do(t, "POST", "/v1/challenges/"+id+"/switch", map[string]any{"channel": to})
			if r.Status != 200 {
				t.Fatalf("switch %d: %d %s", try, r.Status, r.Raw)
			}
			if left := r.Body["attempts_left"]; left != float64(1) {
				t.Errorf("the switched challenge has %v attempts left, want 1 (5 less the 4 used): %s", left, r.Raw)
			}
			id, channel, onThis = lcStr(r.Body, "id"), to, 0
			if to == "sms" {
				lastSMS = e.SMSCode(t, phone, before)
			}
			clock.Add(10 * time.Second)
		}
		r := e.verify(t, id, "000000")
		switch {
		case r.Status == 422 && lcStr(lcObj(r.Body, "error"), "code") == "invalid_code":
			compared++
			onThis++
		case r.Status == 423:
			// The login's attempts are spent (a switch does not refill
			// them): the attacker, who has the password, logs in again.
			compared++
			ch := e.loginChallenge(t, "mallory", lcLaptop)
			id, channel, onThis = lcStr(ch, "id"), lcStr(ch, "channel"), 0
		case r.Status == 429:
			capped = r
		default:
			t.Fatalf("wrong code %d: %d %s", try, r.Status, r.Raw)
		}
	}
	if capped.Status != 429 {
		t.Fatalf("%d wrong codes compared without a 429", compared)
	}
	t.Logf("%d wrong codes compared before the 429", compared)
	if compared > budget {
		t.Errorf("%d wrong codes compared, want at most %d", compared, budget)
	}
	bgWantCapped(t, capped, "too_many_attempts")

	// The cap holds for a right code too, on this and a new challenge.
	if channel != "sms" {
		before := len(e.Twilio.Messages())
		r := e.do(t, "POST", "/v1/challenges/"+id+"/switch", map[string]any{"channel": "sms"})
		if r.Status != 200 {
			t.Fatalf("switch to SMS after the cap: %d %s", r.Status, r.Raw)
		}
		id, lastSMS = lcStr(r.Body, "id"), e.SMSCode(t, phone, before)
	}
	bgWantCapped(t, e.verify(t, id, lastSMS), "too_many_attempts")
	if got := e.must(t, 200, "GET", "/v1/challenges/"+id, nil); got["status"] != "pending" {
		t.Errorf("a refused attempt changed the challenge: %v", got)
	}
	if n := len(bgAlerts(t, e, "alert_attempt_limit")); n != 1 {
		t.Errorf("%d alert_attempt_limit events, want 1", n)
	}

	// An hour later the user signs in again.
	clock.Add(time.Hour + time.Minute)
	seen = len(e.Twilio.Messages())
	ch = e.loginChallenge(t, "mallory", lcLaptop)
	id = lcStr(ch, "id")
	if lcStr(ch, "channel") != "sms" {
		r := e.must(t, 200, "POST", "/v1/challenges/"+id+"/switch", map[string]any{"channel": "sms"})
		id = lcStr(r, "id")
	}
	if r := e.verify(t, id, e.SMSCode(t, phone, seen)); r.Status != 200 {
		t.Fatalf("right code an hour later: %d %s", r.Status, r.Raw)
	}
}

// TestAttemptBudgetParallelChallenges: many evaluations leave many pending
// TOTP challenges; guessing on all of them at once compares no more codes
// than the user's budget.
func TestAttemptBudgetParallelChallenges(t *testing.T) {
	t.Parallel()
	clock := newBGClock()
	const budget = 10
	e := bgStart(t, clock, func(c *config.Config) { c.Limits.WrongCodesPerUserHour = budget })
	e.policy(t, map[string]any{"challenge": "every_login"})
	e.enrollTOTP(t, "trudy")
	var ids []string
	for range 8 {
		ch := e.loginChallenge(t, "trudy", lcLaptop)
		if ch["channel"] != "totp" {
			t.Fatalf("login challenge: %v", ch)
		}
		ids = append(ids, lcStr(ch, "id"))
	}
	answers := csConcurrently(8*4, func(i int) csAnswer {
		return csCall(e.URL, "POST", "/v1/challenges/"+ids[i%len(ids)]+"/verify", e.App, map[string]any{"code": "000000"})
	})
	compared, capped := 0, 0
	for _, a := range answers {
		switch {
		case a.err != nil:
			t.Fatal(a.err)
		case a.status == 422 && a.code() == "invalid_code":
			compared++
		case a.status == 429 && a.code() == "too_many_attempts" && a.field("retry_after") >= 1:
			capped++
		default:
			t.Errorf("guess: %d %s", a.status, a.raw)
		}
	}
	t.Logf("%d of %d parallel guesses compared", compared, len(answers))
	if compared > budget || compared+capped != len(answers) {
		t.Errorf("%d guesses compared, %d capped; want at most %d compared", compared, capped, budget)
	}
	// A backup code counts against the same budget: refused unseen.
	lcWantErr(t, e.verify(t, ids[0], "abcd-efgh"), 429, "too_many_attempts")
}

// TestSMSPumpingCaps is the attacker of issue 12, path 4, for SMS: the
// tenant-wide cap (lowered by the policy) trips with 429 + Retry-After and
// nothing reaches Twilio, and resends count against the client IP of the
// login that started the challenge.
func TestSMSPumpingCaps(t *testing.T) {
	t.Parallel()
	clock := newBGClock()
	e := bgStart(t, clock, func(c *config.Config) { c.Limits.ChallengesPerIPHour = 2 })
	lcWantErr(t, e.Do(t, "PUT", "/v1/admin/policy", e.Mgr, map[string]any{"sms_per_hour": -1}), 400, "validation_failed")
	pol := e.policy(t, map[string]any{"challenge": "every_login", "sms_per_hour": 5, "manager_emails": []string{"it@acme.example"}})
	if pol["sms_per_hour"] != float64(5) {
		t.Fatalf("policy: %v", pol)
	}

	// Resends from anywhere count against the login's client IP: the login
	// and one resend use the IP's two, the next resend is refused.
	phone := lcPhone(701)
	e.enrollSMS(t, "ivan", phone) // SMS 1 of the tenant (no IP given)
	seen := len(e.Twilio.Messages())
	ch := e.loginChallenge(t, "ivan", lcLaptop) // SMS 2, IP 1
	e.SMSCode(t, phone, seen)
	id := lcStr(ch, "id")
	clock.Add(31 * time.Second)
	seen = len(e.Twilio.Messages())
	e.must(t, 202, "POST", "/v1/challenges/"+id+"/resend", nil) // SMS 3, IP 2
	e.SMSCode(t, phone, seen)
	clock.Add(31 * time.Second)
	r := e.do(t, "POST", "/v1/challenges/"+id+"/resend", nil)
	bgWantCapped(t, r, "rate_limited")
	if lcObj(r.Body, "error")["limit"] != "ip" {
		t.Errorf("resend refused by %s, want the ip limit", r.Raw)
	}

	// The refused resend took nothing from the tenant's cap (the shared
	// limits are taken only when the caller's allowed): the fourth and
	// fifth SMS go out, the sixth is refused, unsent.
	seen = len(e.Twilio.Messages())
	e.must(t, 201, "POST", "/v1/users/pump1/sms", map[string]any{"phone": "+37120000001"})
	e.SMSCode(t, "+37120000001", seen)
	seen = len(e.Twilio.Messages())
	e.must(t, 201, "POST", "/v1/users/pump3/sms", map[string]any{"phone": "+37120000003"})
	e.SMSCode(t, "+37120000003", seen)
	seen = len(e.Twilio.Messages())
	r = e.do(t, "POST", "/v1/users/pump2/sms", map[string]any{"phone": "+37120000002"})
	bgWantCapped(t, r, "rate_limited")
	if lcObj(r.Body, "error")["limit"] != "tenant" {
		t.Errorf("sixth SMS refused by %s, want the tenant limit", r.Raw)
	}
	for _, m := range e.Twilio.Messages()[seen:] {
		if m.To == "+37120000002" {
			t.Errorf("an SMS reached Twilio past the tenant cap")
		}
	}
	if strings.Contains(e.Logs.String(), "37120000002") || strings.Contains(e.Logs.String(), phone) {
		t.Error("a phone number reached the log")
	}
	alerts := bgAlerts(t, e, "alert_sms_limit")
	if len(alerts) != 1 {
		t.Errorf("%d alert_sms_limit events, want 1 (once per kind and hour)", len(alerts))
	}
}

// TestEmailBombingCap: code mails to one user are capped per hour; past the
// cap the start answers 429 + Retry-After and no mail is sent.
func TestEmailBombingCap(t *testing.T) {
	t.Parallel()
	clock := newBGClock()
	e := bgStart(t, clock, func(c *config.Config) {
		c.Limits.EmailPerUserHour = 3
		c.Limits.EmailPerAddressHour = 100
	})
	e.policy(t, map[string]any{"manager_emails": []string{"it@acme.example"}})
	addr := "victim@example.test"
	e.must(t, 200, "PUT", "/v1/users/victim", map[string]any{"email": addr})
	for range 3 {
		seen := len(e.SMTP.Messages())
		e.must(t, 201, "POST", "/v1/users/victim/email-factor", nil)
		e.mailTo(t, addr, seen, "verification code")
	}
	seen := len(e.SMTP.Messages())
	r := e.do(t, "POST", "/v1/users/victim/email-factor", nil)
	bgWantCapped(t, r, "rate_limited")
	for _, m := range e.SMTP.Messages()[seen:] {
		if slices.Contains(m.To, addr) {
			t.Errorf("a code mail went out past the cap: %q", m.Subject)
		}
	}
	if strings.Contains(e.Logs.String(), addr) {
		t.Error("the address reached the log")
	}
	if n := len(bgAlerts(t, e, "alert_email_limit")); n != 1 {
		t.Errorf("%d alert_email_limit events, want 1", n)
	}
	// The hour passes: mail flows again, and only that mail went out
	// since the refusal.
	clock.Add(time.Hour)
	e.must(t, 201, "POST", "/v1/users/victim/email-factor", nil)
	e.mailTo(t, addr, seen, "verification code")
	n := 0
	for _, m := range e.SMTP.Messages()[seen:] {
		if slices.Contains(m.To, addr) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d code mails since the refusal, want 1", n)
	}
}
