package e2e_test

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// fbAttacker is where the reported logins come from; fbSameNet is another
// address of its /24.
var (
	fbAttacker = lcDevice{IP: "192.0.2.50", ID: "evil-1",
		UA: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0 Safari/537.36"}
	fbSameNet = lcDevice{IP: "192.0.2.77", ID: lcLaptop.ID, UA: lcLaptop.UA}
)

// fbVerifyRemember verifies a challenged login of an SMS user with
// remember_device and returns the login id and the device token.
func fbVerifyRemember(t *testing.T, e *lcEnv, user, phone string, d lcDevice) (string, string) {
	t.Helper()
	seen := len(e.Twilio.Messages())
	ev := e.evaluate(t, user, d, "")
	if ev["decision"] != "challenge" {
		t.Fatalf("login of %s from %s: %v, want challenge", user, d.IP, ev)
	}
	code := e.SMSCode(t, phone, seen)
	res := e.must(t, 200, "POST", "/v1/challenges/"+lcStr(lcObj(ev, "challenge"), "id")+"/verify", map[string]any{
		"code": code, "remember_device": true, "ip": d.IP, "user_agent": d.UA})
	return lcStr(ev, "login_id"), lcStr(lcObj(res, "result"), "device_token")
}

func fbFeedback(t *testing.T, e *lcEnv, id, verdict string) map[string]any {
	t.Helper()
	return e.must(t, 200, "POST", "/v1/logins/"+id+"/feedback", map[string]any{"verdict": verdict})
}

func fbScore(ev map[string]any) float64 { return lcObj(ev, "risk")["score"].(float64) }

// TestLoginFeedbackFraudAndLegit is issue 13's "Feedback" through the HTTP
// API: logins allowed six days ago are reported as fraud; other users'
// logins from their /24 then carry reported_network and score higher, the
// reported user's history forgets them, the device remembered from them
// no longer skips the challenge, the managers get one alert mail; verdicts
// repeat idempotently, the other verdict is refused, a login past the
// window is unknown, and legit teaches a denied login.
func TestLoginFeedbackFraudAndLegit(t *testing.T) {
	// The clock moves forward (codes sent at a past engine time would be
	// expired for the delivery worker): day 0 is "eight days ago".
	clock := newBGClock()
	e := bgStart(t, clock, nil)
	e.policy(t, map[string]any{"manager_emails": []string{"sec@acme.example"}, "blocked_networks": []string{"198.51.100.0/24"}})

	// Eight days ago: bob and carol, without 2FA, log in from home (allowed, learned).
	old := lcStr(e.evaluate(t, "bob", lcLaptop, ""), "login_id")
	e.evaluate(t, "carol", lcLaptop, "")

	// Six days ago: vic logs in from home, then from the attacker's
	// device, which is remembered; the next login from there is allowed.
	clock.Add(2 * 24 * time.Hour)
	phone := lcPhone(13)
	e.must(t, 200, "PUT", "/v1/users/vic", map[string]any{"email": "vic@example.test"})
	e.enrollSMS(t, "vic", phone)
	fbVerifyRemember(t, e, "vic", phone, lcLaptop)
	first, tok := fbVerifyRemember(t, e, "vic", phone, fbAttacker)
	allowed := e.evaluate(t, "vic", fbAttacker, tok)
	if allowed["decision"] != "allow" || slices.Contains(lcSignals(allowed), "new_network") {
		t.Fatalf("vic's second login from the attacker: %v, want allow on a known network", allowed)
	}
	baseline := e.evaluate(t, "carol", fbSameNet, "") // carol from the attacker's /24, before any report
	if slices.Contains(lcSignals(baseline), "reported_network") {
		t.Fatalf("reported_network before a report: %v", lcSignals(baseline))
	}

	clock.Add(6*24*time.Hour - time.Minute)
	lcWantErr(t, e.do(t, "POST", "/v1/logins/"+old+"/feedback", map[string]any{"verdict": "fraud"}), 404, "login_not_found")
	lcWantErr(t, e.do(t, "POST", "/v1/logins/lg_nosuchlogin/feedback", map[string]any{"verdict": "fraud"}), 404, "login_not_found")
	lcWantErr(t, e.do(t, "POST", "/v1/logins/"+first+"/feedback", map[string]any{"verdict": "maybe"}), 400, "validation_failed")

	seen := len(e.SMTP.Messages())
	// The login allowed through the remembered device is reported first:
	// its device is forgotten although it was remembered at another login.
	id := lcStr(allowed, "login_id")
	if res := fbFeedback(t, e, id, "fraud"); res["history"] != "unlearned" || res["devices_forgotten"] != float64(1) || res["repeated"] != false {
		t.Errorf("fraud on the allowed login: %v", res)
	}
	if res := fbFeedback(t, e, first, "fraud"); res["history"] != "unlearned" || res["devices_forgotten"] != float64(0) {
		t.Errorf("fraud on the verified login: %v", res)
	}
	if res := fbFeedback(t, e, id, "fraud"); res["repeated"] != true || res["history"] != "unchanged" {
		t.Errorf("the same verdict again: %v, want repeated", res)
	}
	lcWantErr(t, e.do(t, "POST", "/v1/logins/"+id+"/feedback", map[string]any{"verdict": "legit"}), 409, "verdict_conflict")

	// The managers got one alert for the two reports; vic, whose device
	// was forgotten, is told why.
	e.mailTo(t, "sec@acme.example", seen, "reported as fraud")
	if m := e.mailTo(t, "vic@example.test", seen, "no longer remembers"); !strings.Contains(m.Text, "was not made by you") {
		t.Errorf("vic's mail about the forgotten device:\n%s", m.Text)
	}
	if n := len(bgAlerts(t, e, "alert_login_reported")); n != 1 {
		t.Errorf("%d alert_login_reported events, want 1 (once an hour)", n)
	}
	reported := 0
	for _, ev := range e.events(t, "vic") {
		if ev["type"] == "login_reported" {
			reported++
		}
	}
	if reported != 2 {
		t.Errorf("%d login_reported audit events for vic, want 2", reported)
	}

	// Another user from the reported /24 scores higher than before.
	after := e.evaluate(t, "bob", fbSameNet, "")
	if !slices.Contains(lcSignals(after), "reported_network") || fbScore(after) <= fbScore(baseline) {
		t.Errorf("bob from the reported /24: score %v signals %v, carol's before the report %v", fbScore(after), lcSignals(after), fbScore(baseline))
	}

	// vic's history no longer knows the attacker's network, and the device
	// remembered from the reported login no longer skips the challenge.
	again := e.evaluate(t, "vic", fbAttacker, tok)
	if again["decision"] != "challenge" || !slices.Contains(lcSignals(again), "new_network") || slices.Contains(lcSignals(again), "remembered_device") {
		t.Errorf("vic from the attacker after the reports: %v %v, want a challenge on a new network", again["decision"], lcSignals(again))
	}

	// legit on a denied login teaches it.
	denied := e.evaluate(t, "erin", lcDevice{IP: "198.51.100.4", UA: lcLaptop.UA}, "")
	if denied["decision"] != "deny" || !slices.Contains(lcSignals(denied), "no_history") {
		t.Fatalf("erin from a blocked network: %v", denied)
	}
	if res := fbFeedback(t, e, lcStr(denied, "login_id"), "legit"); res["history"] != "learned" {
		t.Errorf("legit on a denied login: %v", res)
	}
	if next := e.evaluate(t, "erin", lcDevice{IP: "198.51.100.4", UA: lcLaptop.UA}, ""); slices.Contains(lcSignals(next), "no_history") || slices.Contains(lcSignals(next), "new_ip") {
		t.Errorf("erin after legit: signals %v, want the learned login known", lcSignals(next))
	}

	// An erasure takes the kept login records with it: no verdict can
	// bring the user back.
	e.must(t, 204, "DELETE", "/v1/users/erin", nil)
	lcWantErr(t, e.do(t, "POST", "/v1/logins/"+lcStr(denied, "login_id")+"/feedback", map[string]any{"verdict": "legit"}), 404, "login_not_found")
}
