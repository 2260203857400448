package prompt_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/internal/pagetest"
)

// passkeyUser gives user a passkey (k, at counter) as the only factor,
// on an enrolment page.
func (s site) passkeyUser(t *testing.T, user string, k *pagetest.SoftKey, counter uint32) {
	t.Helper()
	s.Must(t, 200, "PUT", "/v1/users/"+user, s.app, map[string]any{"email": user + "@example.test"})
	s.Must(t, 200, "PUT", "/v1/admin/policy", s.mgr, map[string]any{"allowed_channels": []string{"passkey", "sms", "totp", "email"}})
	pr := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": user, "action": "manage", "return_url": s.host.callback()})
	if st, res := k.Register(t, pagetest.Open(t, pr["url"].(string)), "Key", counter); st != 200 {
		t.Fatalf("register %s's passkey: %d %v", user, st, res)
	}
}

// loginTab evaluates a login of user and opens its prompt.
func (s site) loginTab(t *testing.T, user string) pagetest.Page {
	t.Helper()
	_, u := s.login(t, user, "")
	return pagetest.Open(t, u)
}

func errCode(res map[string]any) string {
	e, _ := res["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// TestPasskeyCounterRegressed: a signature counter that goes backwards
// (a cloned authenticator) is refused; one that goes forward is not.
func TestPasskeyCounterRegressed(t *testing.T) {
	s := newSite(t)
	k := pagetest.NewSoftKey(t)
	s.passkeyUser(t, "pam", k, 10)
	if st, res := k.Login(t, s.loginTab(t, "pam"), 11); st != 200 {
		t.Fatalf("login with the counter ahead: %d %v", st, res)
	}
	st, res := k.Login(t, s.loginTab(t, "pam"), 5)
	if st == 200 || errCode(res) != "passkey_counter_regressed" {
		t.Fatalf("login with the counter behind: %d %v", st, res)
	}
}

// TestPasskeyOtherUsersCredential: a passkey of one user does not answer
// another user's login, in the same tenant or another.
func TestPasskeyOtherUsersCredential(t *testing.T) {
	s := newSite(t)
	mine, theirs := pagetest.NewSoftKey(t), pagetest.NewSoftKey(t)
	s.passkeyUser(t, "ann", mine, 1)
	s.passkeyUser(t, "ben", theirs, 1)
	if st, res := mine.Login(t, s.loginTab(t, "ben"), 2); st == 200 {
		t.Fatalf("ann's passkey answered ben's login: %v", res)
	}
	if st, res := theirs.Login(t, s.loginTab(t, "ben"), 2); st != 200 {
		t.Fatalf("ben's own passkey: %d %v", st, res)
	}
}

// TestPasskeyAssertionReplayed: one assertion answers one ceremony; the
// same answer posted again (or to a newer ceremony) is refused.
func TestPasskeyAssertionReplayed(t *testing.T) {
	s := newSite(t)
	k := pagetest.NewSoftKey(t)
	s.passkeyUser(t, "ray", k, 1)
	p := s.loginTab(t, "ray")
	_, opts := p.API(t, "/passkey/login/begin", nil)
	cred := k.Get(t, p, opts, 2)
	// A wrong first answer, then the right one twice.
	p2 := s.loginTab(t, "ray")
	_, opts2 := p2.API(t, "/passkey/login/begin", nil)
	if st, res := p2.API(t, "/passkey/login/finish", map[string]any{"credential": cred}); st == 200 {
		t.Fatalf("an assertion for another page's ceremony was taken: %v", res)
	}
	if st, res := p2.API(t, "/passkey/login/finish", map[string]any{"credential": k.Get(t, p2, opts2, 3)}); st == 200 {
		t.Fatalf("a ceremony answered (wrongly) once was answered again: %v", res)
	}
	if st, res := p.API(t, "/passkey/login/finish", map[string]any{"credential": cred}); st != 200 {
		t.Fatalf("the right answer: %d %v", st, res)
	}
}

// settingsTab opens user's settings page and proves the passkey k on it.
func (s site) settingsTab(t *testing.T, user string, k *pagetest.SoftKey, counter uint32) pagetest.Page {
	t.Helper()
	pr := s.Must(t, 201, "POST", "/v1/prompts", s.app, map[string]any{"user_id": user, "action": "manage", "return_url": s.host.callback()})
	p := pagetest.Open(t, pr["url"].(string))
	if st, res := k.Login(t, p, counter); st != 200 {
		t.Fatalf("step-up with the passkey: %d %v", st, res)
	}
	return p
}

// TestPasskeyDuplicateCredentialID: a credential id the user already has
// is refused at registration. Before, a second passkey under the owner's
// credential id (the attacker's key, added while at the owner's unlocked
// settings page) stayed hidden behind the owner's at each login, and
// "Remove" on it (by id) removed the owner's passkey instead, leaving the
// attacker's as the one that answers.
func TestPasskeyDuplicateCredentialID(t *testing.T) {
	s := newSite(t)
	own := pagetest.NewSoftKey(t)
	s.passkeyUser(t, "vic", own, 1)
	p := s.settingsTab(t, "vic", own, 2)
	evil := pagetest.NewSoftKey(t)
	evil.ID = own.ID
	if st, res := evil.Register(t, p, "Key", 0); st == 200 {
		t.Errorf("a passkey under the id of the user's own was added: %v", res)
	}
	keys, _ := s.Must(t, 200, "GET", "/v1/users/vic", s.app, nil)["passkeys"].([]any)
	if len(keys) != 1 {
		t.Fatalf("passkeys: %v", keys)
	}
	// The owner's passkey still answers.
	if st, res := own.Login(t, s.loginTab(t, "vic"), 3); st != 200 {
		t.Fatalf("the owner's passkey: %d %v", st, res)
	}
}

// TestPasskeyTransportsFromTheBrowser: the transports a browser reports
// at registration are the client's words. Kept as sent, any string of any
// length went into the account (read at every evaluate), into
// GET /v1/users/{id} for the host app to show, and back to browsers in
// each ceremony's options; so did the raw attestation, which nothing
// reads again. Only the transports WebAuthn defines are kept.
func TestPasskeyTransportsFromTheBrowser(t *testing.T) {
	s := newSite(t)
	k := pagetest.NewSoftKey(t)
	k.Transports = []string{"internal", "hybrid", "<img src=x onerror=alert(1)>", strings.Repeat("x", 30000), "usb\x00"}
	s.passkeyUser(t, "tia", k, 1)
	keys, _ := s.Must(t, 200, "GET", "/v1/users/tia", s.app, nil)["passkeys"].([]any)
	if len(keys) != 1 {
		t.Fatalf("passkeys: %v", keys)
	}
	got, _ := json.Marshal(keys[0].(map[string]any)["transports"])
	if string(got) != `["internal","hybrid"]` {
		t.Errorf("transports kept: %.200s", got)
	}
	a, err := s.App.Store.Account(context.Background(), engine.UserRef{Tenant: s.tenant, User: "tia"})
	if err != nil {
		t.Fatal(err)
	}
	if raw, _ := json.Marshal(a.Factors.Passkeys); len(raw) > 1024 {
		t.Errorf("a passkey takes %d bytes of the account: %.300s", len(raw), raw)
	}
	if st, res := k.Login(t, s.loginTab(t, "tia"), 2); st != 200 {
		t.Fatalf("login with the passkey: %d %v", st, res)
	}
}
