package api_test

import (
	"regexp"
	"testing"

	"github.com/stepup-auth/stepup/internal/apptest"
)

// TestEmailChange: the 202 answer of PUT /v1/users/{id}, both steps, the
// GET with email_change_pending and the email_changed event, all checked
// against the OpenAPI document like every exchange here.
func TestEmailChange(t *testing.T) {
	const phone = "+61491570160"
	s := start(t, apptest.Options{})
	tn := s.tenant(t, "acme")
	app := tn.App
	s.must(t, 200, "PUT", "/v1/users/dora", app, map[string]any{"email": "dora@example.test"})
	s.enrollSMS(t, app, "dora", phone)

	seen, seenMail := len(s.Twilio.Messages()), len(s.SMTP.Messages())
	st := s.must(t, 202, "PUT", "/v1/users/dora", app, map[string]any{"email": "dora@new.example", "locale": "en-GB"})
	ch := obj(st, "challenge")
	if ch["purpose"] != "email_change_old" || obj(st, "profile")["email"] != "dora@example.test" || obj(st, "profile")["locale"] != "en-GB" {
		t.Fatalf("202: %v", st)
	}
	if u := s.must(t, 200, "GET", "/v1/users/dora", app, nil); u["email_change_pending"] != true {
		t.Errorf("pending change not shown: %v", u)
	}
	res := s.must(t, 200, "POST", "/v1/challenges/"+str(ch, "id")+"/verify", app, map[string]any{"code": s.SMSCode(t, phone, seen)})
	next := obj(obj(res, "result"), "next_challenge")
	if next["purpose"] != "email_change_new" || next["channel"] != "email" {
		t.Fatalf("step one: %v", res)
	}
	code := regexp.MustCompile(`\b\d{6}\b`).FindString(mailTo(t, s, "dora@new.example", seenMail, "verification code").Text)
	s.must(t, 200, "POST", "/v1/challenges/"+str(next, "id")+"/verify", app, map[string]any{"code": code})
	if u := s.must(t, 200, "GET", "/v1/users/dora", app, nil); obj(u, "profile")["email"] != "dora@new.example" || u["email_change_pending"] != false {
		t.Errorf("after the change: %v", u)
	}
	evs := s.must(t, 200, "GET", "/v1/admin/events?user_id=dora&type=email_changed", tn.Manager, nil)["events"].([]any)
	if len(evs) != 1 {
		t.Errorf("email_changed events: %v", evs)
	}
	wantError(t, s.do(t, "PUT", "/v1/users/dora", app, map[string]any{"email": ""}), 422, "email_required", "email")
}

// TestStaleChallenge: a challenge made before the user's factors changed
// answers 409 challenge_stale.
func TestStaleChallenge(t *testing.T) {
	const evil, hers = "+61491570161", "+61491570162"
	s := start(t, apptest.Options{})
	app := s.tenant(t, "acme").App
	seen := len(s.Twilio.Messages())
	ch := obj(s.must(t, 201, "POST", "/v1/users/ivy/sms", app, map[string]any{"phone": evil}), "challenge")
	code := s.SMSCode(t, evil, seen)
	s.enrollSMS(t, app, "ivy", hers)
	wantError(t, s.do(t, "POST", "/v1/challenges/"+str(ch, "id")+"/verify", app, map[string]any{"code": code}), 409, "challenge_stale", "")
}
