package e2e_test

import (
	"strings"
	"testing"
	"time"
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

// TestAttackReportLinkOfAnErasedUser: a "this wasn't me" link from a mail
// sent before the user's erasure does nothing after it: it must not bring
// back an audit event naming the user, a manager alert about him, or a
// record of him in the store.
func TestAttackReportLinkOfAnErasedUser(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.setManagers(t, "boss@example.test")
	link := e.aliceLink(t)
	e.Must(t, 204, "DELETE", "/v1/users/alice", e.AppKey, nil)

	if r := e.report(t, link); r.Status != 410 || !strings.Contains(string(r.Raw), `"code":"report_link_invalid"`) {
		t.Errorf("report link of an erased user: %d %s, want 410 report_link_invalid", r.Status, r.Raw)
	}
	evs, _ := e.events(t, "?user_id=alice&limit=100")
	for _, ev := range evs {
		if ev["type"] != "user_erased" {
			t.Errorf("after the erasure the audit log names the user again: %v", ev)
		}
	}
	e.queueIdle(t)
	if n := ntfCount(e.SMTP, "boss@example.test", "User alice reported activity that wasn't theirs"); n != 0 {
		t.Errorf("the managers were told of a report by an erased user (%d mails)", n)
	}
	if r := e.Do(t, "GET", "/v1/users/alice", e.AppKey, nil); r.Status != 404 {
		t.Errorf("GET the erased user after the report: %d %s, want 404", r.Status, r.Raw)
	}
}

// TestAttackReportLinkOfAnEarlierAccount: a link mailed to a user erased
// since does not act on a new account given the same id later.
func TestAttackReportLinkOfAnEarlierAccount(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	link := e.aliceLink(t)
	e.Must(t, 204, "DELETE", "/v1/users/alice", e.AppKey, nil)
	time.Sleep(1100 * time.Millisecond) // links carry their time in seconds
	e.putUser(t, "alice", "new-alice@example.test")

	if r := e.report(t, link); r.Status != 410 || !strings.Contains(string(r.Raw), `"code":"report_link_invalid"`) {
		t.Errorf("the old account's report link on the new account: %d %s, want 410 report_link_invalid", r.Status, r.Raw)
	}
	evs, _ := e.events(t, "?user_id=alice&type=report_received&limit=100")
	if len(evs) != 0 {
		t.Errorf("the new account got a report: %v", evs)
	}
}
