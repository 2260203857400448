package e2e_test

// Review of the "every change of 2FA settings is mailed" promise and of
// the policy modes, through the HTTP API.

import (
	"testing"
)

// A host app reports every password change; one that forgets no device
// changes nothing, so the user hears of nothing ("no longer remembers the
// 0 devices" was mailed on every password change, and again on every
// retried report).
func TestReviewNoDevicesForgottenMailWhenNoneWere(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.putUser(t, "alice", "alice@example.test")
	e.enrollSMS(t, "alice", ntfPhone1)
	const subj = "Your account no longer remembers your devices"
	// No remembered device: nothing forgotten, no mail.
	body := map[string]any{"ip": ntfIP, "user_agent": ntfUA}
	if r := e.Must(t, 200, "POST", "/v1/users/alice/events/password-changed", e.AppKey, body); r["forgotten"] != 0.0 {
		t.Fatalf("password changed without devices: %v", r)
	}
	e.queueIdle(t)
	if n := ntfCount(e.SMTP, "alice@example.test", subj); n != 0 {
		t.Errorf("%d devices-forgotten mails when no device was remembered, want 0", n)
	}
	// One remembered device, the report retried: one mail.
	e.loginRemember(t, "alice", ntfPhone1, "laptop")
	for range 2 {
		e.Must(t, 200, "POST", "/v1/users/alice/events/password-changed", e.AppKey, body)
	}
	e.userMail(t, "alice@example.test", subj, "no longer remembers the device where")
	e.queueIdle(t)
	if n := ntfCount(e.SMTP, "alice@example.test", subj); n != 1 {
		t.Errorf("%d devices-forgotten mails for one device forgotten (report retried), want 1", n)
	}
}

// Removing a group that required 2FA, in a tenant whose base mode is off,
// switches 2FA off for the group's users: they are told, as for any other
// policy change that switches it off (SPEC section 6/7).
func TestReviewGroupRemovedIsModeOff(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.Must(t, 200, "PUT", "/v1/admin/policy", e.MgrKey, map[string]any{"mode": "off",
		"groups": map[string]any{"staff": map[string]any{"mode": "optional"}}})
	e.putUser(t, "alice", "alice@example.test")
	e.Must(t, 200, "PUT", "/v1/users/alice", e.AppKey, map[string]any{"group": "staff"})
	e.enrollSMS(t, "alice", ntfPhone1)
	// alice's 2FA works: a cold-start login is challenged.
	if ev := e.evaluate(t, "alice", ntfIP, "laptop", ""); ev["decision"] != "challenge" {
		t.Fatalf("staff login with 2FA on: %v", ev)
	}
	e.Must(t, 200, "PUT", "/v1/admin/policy", e.MgrKey, map[string]any{"groups": map[string]any{}})
	if ev := e.evaluate(t, "alice", ntfIP, "laptop", ""); ev["decision"] != "allow" {
		t.Fatalf("login after the group was removed (tenant mode off): %v", ev)
	}
	const subj = "acme switched off two-factor authentication"
	e.waitMail(t, "alice@example.test", subj)
	e.queueIdle(t)
	if n := ntfCount(e.SMTP, "alice@example.test", subj); n != 1 {
		t.Errorf("%d mode-off mails, want 1", n)
	}
	e.event(t, "alice", "tenant_mode_off")
}

// A user whose policy stays `required` keeps the grace logins he used
// when a manager removes his group's override of another field: his
// enrolment duty never paused, so no fresh grace period starts.
func TestReviewGraceKeptWhenGroupRemoved(t *testing.T) {
	t.Parallel()
	env := polStart(t)
	tn := polNewTenant(t, env, "acme")
	polPut(t, env, tn, map[string]any{"mode": "required", "grace_logins": 2,
		"groups": map[string]any{"staff": map[string]any{"challenge": "every_login"}}})
	env.Must(t, 200, "PUT", "/v1/users/dave", tn.App, map[string]any{"email": "dave@example.test", "group": "staff"})
	login := polLogin{User: "dave", IP: polIPAU, Device: "laptop"}
	polEval(t, env, tn, login)
	polEval(t, env, tn, login)
	if ev := polEval(t, env, tn, login); ev["decision"] != "enroll" {
		t.Fatalf("after 2 grace logins: %v", ev)
	}
	polPut(t, env, tn, map[string]any{"groups": map[string]any{}})
	if u := env.Must(t, 200, "GET", "/v1/users/dave", tn.App, nil); polGrace(u) != 0 {
		t.Errorf("dave's grace logins after his group's override was removed: %v, want 0", u["grace_logins_left"])
	}
	if ev := polEval(t, env, tn, login); ev["decision"] != "enroll" {
		t.Errorf("dave, required all along, got fresh grace logins when his group was removed: %v", ev)
	}
}

// The mail about an e-mail address change says where the change came
// from, as every other change mail does: PUT /v1/users/{id} takes the
// optional ip and user_agent of the lifecycle calls (it refused them, so
// the old address could never be told where a change came from).
func TestReviewEmailChangeMailSaysWhereFrom(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.putUser(t, "xena", "xena@example.test")
	u := e.Must(t, 200, "PUT", "/v1/users/xena", e.AppKey, map[string]any{"email": "xena2@example.test", "ip": ntfIP, "user_agent": ntfUA})
	if ntfObj(u, "profile")["email"] != "xena2@example.test" {
		t.Fatalf("after the change: %v", u)
	}
	const subj = "Your e-mail address for security notices was changed"
	m := e.waitMail(t, "xena@example.test", subj)
	ntfWantPhrase(t, m, "Australia", "Chrome 124 on Windows 10")
	e.userEvent(t, "xena", "email_changed")
	e.queueIdle(t)
	if n := ntfCount(e.SMTP, "xena@example.test", subj); n != 1 {
		t.Errorf("%d mails to the old address, want 1", n)
	}
	// A bad client address is refused, and nothing changes.
	r := e.Do(t, "PUT", "/v1/users/xena", e.AppKey, map[string]any{"email": "xena3@example.test", "ip": "999.1.1.1"})
	if r.Status != 400 {
		t.Errorf("PUT with a bad ip: %d %s, want 400", r.Status, r.Raw)
	}
}

// A manager's reset retried (a client retrying on a timeout, or two
// managers on the same ticket) changes nothing the second time: the user
// and the managers hear of the reset once; both calls are audited.
func TestReviewAdminResetRetriedMailsOnce(t *testing.T) {
	t.Parallel()
	e := ntfStart(t, nil)
	e.setManagers(t, "boss@example.test")
	e.putUser(t, "alice", "alice@example.test")
	e.enrollSMS(t, "alice", ntfPhone1)
	for range 2 {
		e.Must(t, 200, "POST", "/v1/admin/users/alice/reset", e.MgrKey, map[string]any{"reason": "lost phone"})
	}
	const userSubj, mgrSubj = "An administrator reset two-factor authentication on your account", "Two-factor authentication was reset for user alice"
	e.waitMail(t, "alice@example.test", userSubj)
	e.waitMail(t, "boss@example.test", mgrSubj)
	e.queueIdle(t)
	if n := ntfCount(e.SMTP, "alice@example.test", userSubj); n != 1 {
		t.Errorf("%d reset mails to the user, want 1", n)
	}
	if n := ntfCount(e.SMTP, "boss@example.test", mgrSubj); n != 1 {
		t.Errorf("%d reset mails to the manager, want 1", n)
	}
	if evs, _ := e.events(t, "?type=admin_reset&user_id=alice"); len(evs) != 2 {
		t.Errorf("%d admin_reset events, want 2 (both calls audited)", len(evs))
	}
}
