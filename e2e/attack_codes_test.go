package e2e_test

import (
	"testing"
)

// TestAttackForcedChallengeOutlivesAnUnansweredOne: after a "this wasn't
// me" report the next login is challenged whatever its score, until a
// login challenge is answered. An attacker holding the password must not
// spend the forced challenge by starting a login and dropping it, then
// sign in on the familiar-looking context the report was about.
func TestAttackForcedChallengeOutlivesAnUnansweredOne(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.putUser(t, "alice", "alice@example.test")
	e.enrollSMS(t, "alice", ntfPhone1)
	e.loginRemember(t, "alice", ntfPhone1, "laptop")
	if ev := e.evaluate(t, "alice", ntfIP, "laptop", ""); ev["decision"] != "allow" {
		t.Fatalf("familiar login before the report: %v", ev)
	}
	e.stepSMS(t, "/v1/users/alice/backup-codes", ntfPhone1, map[string]any{"ip": ntfIP, "user_agent": ntfUA})
	_, link := e.userMail(t, "alice@example.test", "New backup codes were created for your account")
	if r := e.report(t, link); r.Status != 200 {
		t.Fatalf("report: %d %s", r.Status, r.Raw)
	}

	// The attacker starts a login and never answers its code.
	seen := len(e.Twilio.Messages())
	if ev := e.evaluate(t, "alice", ntfIP, "laptop", ""); ev["decision"] != "challenge" {
		t.Fatalf("first login after the report: %v, want challenge", ev)
	}
	e.SMSCode(t, ntfPhone1, seen) // its code is sent, and dropped
	// The next one is still challenged.
	seen = len(e.Twilio.Messages())
	ev := e.evaluate(t, "alice", ntfIP, "laptop", "")
	if ev["decision"] != "challenge" {
		t.Fatalf("second login after the report, the first challenge unanswered: %v, want challenge", ev)
	}
	// Answered, the forced challenge is spent.
	e.verifySMS(t, ntfStr(ntfObj(ev, "challenge"), "id"), ntfPhone1, seen, nil)
	if ev := e.evaluate(t, "alice", ntfIP, "laptop", ""); ev["decision"] != "allow" {
		t.Errorf("login after the forced challenge was answered: %v, want allow", ev)
	}
}
