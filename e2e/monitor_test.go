package e2e_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/internal/apptest"
	"github.com/stepup-auth/stepup/internal/geoiptest"
	"github.com/stepup-auth/stepup/internal/smtptest"
)

// Monitor mode (policy enforcement: monitor) over the real HTTP API: every
// login is allowed with what enforcement would have decided, nothing is
// sent, the login is learnt, the audit log and the managers' digest hold
// the evidence, and switching to enforce challenges again.

const (
	monPhone   = "+61491570166"
	monManager = "boss@example.test"
	monBlocked = "203.0.113.99" // US, on the policy's blocked networks
	monUS      = "203.0.113.20" // US, not blocked
)

func TestMonitorMode(t *testing.T) {
	clock := newBGClock()
	geo := geoiptest.WriteFile(t, geoiptest.TypeCountry, geoiptest.DemoNetworks)
	env := apptest.New(t, apptest.Options{Clock: clock.Now, Configure: func(c *config.Config) {
		c.GeoIP.CountryDB = geo
		c.Limits.ChallengesPerIPHour = 1000
	}})
	_, app, mgr := env.Tenant(t, "acme")
	s := evalSite{Env: env, app: app, mgr: mgr}

	pol := env.Must(t, 200, "PUT", "/v1/admin/policy", mgr, map[string]any{
		"enforcement": "monitor", "manager_emails": []string{monManager}, "daily_digest": true,
		"blocked_networks": []string{monBlocked + "/32"}})
	if pol["enforcement"] != "monitor" {
		t.Fatalf("policy after PUT: %v", pol)
	}

	// alice: a familiar laptop in GB, then SMS 2FA.
	for range 4 {
		s.evaluate(t, "alice", evalIPGB, "laptop")
	}
	seen := len(env.Twilio.Messages())
	st := env.Must(t, 201, "POST", "/v1/users/alice/sms", app, map[string]any{"phone": monPhone, "ip": evalIPGB, "user_agent": evalUA})
	res := env.Must(t, 200, "POST", "/v1/challenges/"+evalStr(evalObj(st, "challenge"), "id")+"/verify", app,
		map[string]any{"code": env.SMSCode(t, monPhone, seen)})
	if res["verified"] != true || res["purpose"] != "enroll_sms" {
		t.Fatalf("SMS enrolment: %v", res)
	}
	ntfQueueIdle(t, env)
	sent := len(env.Twilio.Messages())

	var risky map[string]any
	t.Run("a risky login is allowed with would_decide challenge", func(t *testing.T) {
		ev := s.evaluate(t, "alice", evalIPAU, "stranger")
		risky = ev
		if ev["decision"] != "allow" || ev["would_decide"] != "challenge" || ev["challenge"] != nil {
			t.Fatalf("monitored risky login: %v, want allow, would_decide challenge, no challenge", ev)
		}
		if evalScore(ev) < 50 || evalObj(ev, "risk")["level"] != "medium" ||
			!slices.Equal(evalSignals(ev), []string{"new_country", "new_device"}) {
			t.Errorf("risk %v, want the full risk of the login", evalObj(ev, "risk"))
		}
		ntfQueueIdle(t, env)
		if n := len(env.Twilio.Messages()); n != sent {
			t.Errorf("%d SMS reached Twilio after the monitored login, want none", n-sent)
		}
	})
	if risky == nil {
		t.FailNow()
	}

	t.Run("the monitored login was learnt", func(t *testing.T) {
		ev := s.evaluate(t, "alice", evalIPAU, "stranger")
		if ev["decision"] != "allow" || ev["would_decide"] != nil || evalScore(ev) >= 50 ||
			slices.Contains(evalSignals(ev), "new_country") || slices.Contains(evalSignals(ev), "new_device") {
			t.Errorf("the same login again: %v, want a low score and no would_decide", ev)
		}
	})

	t.Run("a familiar login reports no would_decide", func(t *testing.T) {
		if ev := s.evaluate(t, "alice", evalIPGB, "laptop"); ev["decision"] != "allow" || ev["would_decide"] != nil {
			t.Errorf("familiar login: %v", ev)
		}
	})

	t.Run("a blocked network would deny, and the user hears nothing", func(t *testing.T) {
		env.Must(t, 200, "PUT", "/v1/users/bob", app, map[string]any{"email": "bob@example.test"})
		ev := s.evaluate(t, "bob", monBlocked, "bob-laptop")
		if ev["decision"] != "allow" || ev["would_decide"] != "deny" {
			t.Fatalf("login from a blocked network: %v, want allow with would_decide deny", ev)
		}
		ntfQueueIdle(t, env)
		for _, m := range env.SMTP.Messages() {
			if slices.Contains(m.To, "bob@example.test") {
				t.Errorf("bob was mailed %q about a monitored login", m.Subject)
			}
		}
	})

	t.Run("the audit log has the monitored logins", func(t *testing.T) {
		evs, _ := env.Must(t, 200, "GET", "/v1/admin/events?type=login_monitored&user_id=alice", mgr, nil)["events"].([]any)
		if len(evs) != 1 {
			t.Fatalf("%d login_monitored events for alice, want 1: %v", len(evs), evs)
		}
		a := evs[0].(map[string]any)
		d := evalObj(a, "details")
		if d["would_decide"] != "challenge" || d["score"] != strconv.Itoa(evalScore(risky)) ||
			d["signals"] != "new_country,new_device" || a["actor"] != "user" {
			t.Errorf("login_monitored event %v, want would_decide challenge, score %v, signals new_country,new_device", a, evalObj(risky, "risk")["score"])
		}
		evs, _ = env.Must(t, 200, "GET", "/v1/admin/events?type=login_monitored&user_id=bob", mgr, nil)["events"].([]any)
		if len(evs) != 1 || evalObj(evs[0].(map[string]any), "details")["would_decide"] != "deny" {
			t.Errorf("bob's login_monitored events: %v, want one with would_decide deny", evs)
		}
		if denied, _ := env.Must(t, 200, "GET", "/v1/admin/events?type=login_denied", mgr, nil)["events"].([]any); len(denied) != 0 {
			t.Errorf("login_denied events in monitor mode: %v", denied)
		}
	})

	t.Run("the daily digest counts what would have happened", func(t *testing.T) {
		day := clock.Now().UTC().Format(time.DateOnly)
		clock.Add(24 * time.Hour)
		if err := env.App.Engine.Policies.SendDigests(context.Background()); err != nil {
			t.Fatal(err)
		}
		m := monWaitMail(t, env.SMTP, monManager, "Two-factor digest for acme, "+day)
		for _, want := range []string{"Monitor mode (not enforced)", "Asked for a code:         1\n", "Blocked:                  1\n"} {
			if !strings.Contains(strings.ReplaceAll(m.Text, "\r\n", "\n"), want) {
				t.Errorf("digest text lacks %q:\n%s", want, m.Text)
			}
		}
		if strings.Contains(m.Text, "Required 2FA setup") {
			t.Errorf("digest counts a would-be enrolment:\n%s", m.Text)
		}
	})

	t.Run("switching to enforce challenges again", func(t *testing.T) {
		env.Must(t, 200, "PUT", "/v1/admin/policy", mgr, map[string]any{"enforcement": "enforce"})
		before := len(env.Twilio.Messages())
		ev := s.evaluate(t, "alice", monUS, "burner")
		if ev["decision"] != "challenge" || ev["would_decide"] != nil || ev["challenge"] == nil {
			t.Fatalf("risky login under enforce: %v, want a challenge", ev)
		}
		env.SMSCode(t, monPhone, before) // the code goes out
	})
}

// monWaitMail waits for a mail to `to` with this subject.
func monWaitMail(t *testing.T, srv *smtptest.Server, to, subject string) smtptest.Message {
	t.Helper()
	deadline := time.Now().Add(evalPatience)
	for time.Now().Before(deadline) {
		for _, m := range srv.Messages() {
			if m.Subject == subject && slices.Contains(m.To, to) {
				return m
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no mail %q to %s within %v", subject, to, evalPatience)
	return smtptest.Message{}
}
