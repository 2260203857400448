package e2e_test

// Attacks on the 2FA lifecycle over the real HTTP API: an attacker who
// holds a user's password (so the host app's password confirmation before
// a lifecycle call passes) but none of the user's factors. Each test is
// a bug that was found this way. Helpers carry the at prefix.

import (
	"net/url"
	"testing"

	"github.com/stepup-auth/stepup/internal/apptest"
	"github.com/stepup-auth/stepup/internal/pagetest"
)

const atReturnURL = "https://app.example.test/cb"

// atStartPasskeys starts a stepupd whose public_url is
// http://localhost:<port>, so WebAuthn is on, with the tenant "acme"
// accepting atReturnURL.
func atStartPasskeys(t *testing.T) *lcEnv {
	t.Helper()
	e := lcStart(t, apptest.Options{Redis: apptest.Single, Localhost: true})
	e.policy(t, map[string]any{"return_urls": []string{atReturnURL}})
	return e
}

// atPasskeyOnly gives user a passkey as the only factor, on the hosted
// enrolment page, and returns the passkey's id.
func atPasskeyOnly(t *testing.T, e *lcEnv, user string) string {
	t.Helper()
	e.must(t, 200, "PUT", "/v1/users/"+user, map[string]any{"email": user + "@example.test"})
	pr := e.must(t, 201, "POST", "/v1/prompts", map[string]any{"user_id": user, "action": "manage", "return_url": atReturnURL})
	if st, res := pagetest.NewSoftKey(t).Register(t, pagetest.Open(t, lcStr(pr, "url")), "Laptop", 0); st != 200 {
		t.Fatalf("adding a passkey: %d %v", st, res)
	}
	got := e.user(t, user)
	keys, _ := got["passkeys"].([]any)
	if len(keys) != 1 || got["enrolled"] != true {
		t.Fatalf("after adding a passkey: %v", got)
	}
	return lcStr(keys[0].(map[string]any), "id")
}

// TestAttackRemoveLastPasskeyWithoutProof: a user whose only factor is a
// passkey. Turning 2FA off asks for that factor (POST .../2fa/disable is
// a challenge), but removing the passkey with the app key alone left the
// user with no factor at all: 2FA off for whoever has the password.
func TestAttackRemoveLastPasskeyWithoutProof(t *testing.T) {
	e := atStartPasskeys(t)
	id := atPasskeyOnly(t, e, "pia")

	r := e.do(t, "DELETE", "/v1/users/pia/passkeys/"+id, nil)
	csWantError(t, r, 409, "last_factor")
	if got := e.user(t, "pia"); got["enrolled"] != true {
		t.Fatalf("the user's last factor went without proof: %v", got)
	}
	// The proven way stays open: the disable asks for a current factor.
	st := e.must(t, 201, "POST", "/v1/users/pia/2fa/disable", nil)
	if ch := lcObj(st, "challenge"); ch["purpose"] != "disable" {
		t.Errorf("2fa/disable: %v", st)
	}
}

// TestAttackStaleSettingsPageAfterReset: the lost-phone case. The thief,
// with the phone and the password, opens the settings page and proves the
// SMS factor. The owner has a manager reset the account and sets up a new
// phone. The thief's page, whose proof was of a factor that is gone, must
// not go on changing the account: adding a passkey there gave the thief a
// factor of the owner's new setup.
func TestAttackStaleSettingsPageAfterReset(t *testing.T) {
	e := atStartPasskeys(t)
	e.must(t, 200, "PUT", "/v1/users/vic", map[string]any{"email": "vic@example.test"})
	stolen, fresh := lcPhone(311), lcPhone(312)
	e.enrollSMS(t, "vic", stolen)

	seen := len(e.Twilio.Messages())
	pr := e.must(t, 201, "POST", "/v1/prompts", map[string]any{"user_id": "vic", "action": "manage", "return_url": atReturnURL})
	page := pagetest.Open(t, lcStr(pr, "url"))
	if st := page.Form(t, "/verify", url.Values{"code": {e.SMSCode(t, stolen, seen)}}); st != 200 {
		t.Fatalf("step-up on the settings page: %d", st)
	}

	e.Must(t, 200, "POST", "/v1/admin/users/vic/reset", e.Mgr, map[string]any{"reason": "phone stolen"})
	e.enrollSMS(t, "vic", fresh)

	if st, res := pagetest.NewSoftKey(t).Register(t, page, "Laptop", 0); st == 200 {
		t.Errorf("the thief's settings page, proven on the reset factor, added a passkey: %v", res)
	}
	if keys, _ := e.user(t, "vic")["passkeys"].([]any); len(keys) != 0 {
		t.Fatalf("the owner's new setup has the thief's passkey: %v", keys)
	}
}
