package engine_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/message"

	"github.com/pquerna/otp/totp"

	"github.com/stepup-auth/stepup/engine"
)

// secTOTP is the current code of secret at the harness's clock.
func secTOTP(t *testing.T, h *evHarness, secret string) string {
	t.Helper()
	code, err := totp.GenerateCode(secret, h.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	return code
}

func secCode(err error) string {
	var ee *engine.Error
	if errors.As(err, &ee) {
		return ee.Code
	}
	return ""
}

// secEnrollTOTP enrols an authenticator app as the user's first factor and
// returns its secret.
func secEnrollTOTP(t *testing.T, h *evHarness, u engine.UserRef) string {
	t.Helper()
	ctx := context.Background()
	st, err := h.eng.Lifecycle.StartTOTP(ctx, u, engine.Actor{Kind: message.ActorUser})
	if err != nil {
		t.Fatal(err)
	}
	secret := st.Extra["secret"].(string)
	if _, err := h.eng.Challenges.Verify(ctx, u.Tenant, st.Challenge.ID, engine.VerifyInput{Code: secTOTP(t, h, secret)}); err != nil {
		t.Fatalf("TOTP enrolment: %v", err)
	}
	h.clock.advance(31 * time.Second) // the next code is a new step
	return secret
}

// A first enrolment started by an attacker and verified after the victim
// enrolled is stale: it is closed and the victim's factor stays.
func TestStaleEnrolmentRefused(t *testing.T) {
	ctx := context.Background()
	h := newEvHarness(t)
	u := engine.UserRef{Tenant: h.tenant(t, engine.PolicyPatch{}), User: "vic"}

	evil, err := h.eng.Lifecycle.StartTOTP(ctx, u, engine.Actor{Kind: message.ActorUser})
	if err != nil {
		t.Fatal(err)
	}
	secEnrollTOTP(t, h, u)
	before, _ := h.store.Account(ctx, u)

	code := secTOTP(t, h, evil.Extra["secret"].(string))
	_, err = h.eng.Challenges.Verify(ctx, u.Tenant, evil.Challenge.ID, engine.VerifyInput{Code: code})
	if secCode(err) != "challenge_stale" {
		t.Fatalf("stale enrolment verified: %v, want challenge_stale", err)
	}
	if v, _ := h.eng.Challenges.GetChallenge(ctx, u.Tenant, evil.Challenge.ID); v.Status != engine.StatusCancelled {
		t.Errorf("stale challenge is %s, want cancelled", v.Status)
	}
	after, _ := h.store.Account(ctx, u)
	if string(after.Factors.TOTP.Sealed) != string(before.Factors.TOTP.Sealed) {
		t.Error("the stale enrolment replaced the victim's authenticator")
	}
}

// Logins (a TOTP step, a remembered device, a new account version) do not
// make an open challenge stale.
func TestLoginDoesNotStaleChallenges(t *testing.T) {
	ctx := context.Background()
	h := newEvHarness(t)
	tn := h.tenant(t, engine.PolicyPatch{Challenge: new(engine.ChallengeEveryLogin), RememberDeviceDays: new(30)})
	u := engine.UserRef{Tenant: tn, User: "lea"}
	secret := secEnrollTOTP(t, h, u)

	bc, err := h.eng.Lifecycle.StartBackupCodes(ctx, u, engine.Actor{Kind: message.ActorUser})
	if err != nil {
		t.Fatal(err)
	}
	ev := h.evaluate(t, tn, engine.EvaluateInput{UserID: "lea", IP: "192.0.2.7", UserAgent: "curl/8", DeviceID: "d1"})
	if ev.Challenge == nil {
		t.Fatalf("login not challenged: %+v", ev)
	}
	res, err := h.eng.Challenges.Verify(ctx, tn, ev.Challenge.ID, engine.VerifyInput{Code: secTOTP(t, h, secret), RememberDevice: true})
	if err != nil || res.Result["device_token"] == nil {
		t.Fatalf("login verification: %v %v", res, err)
	}
	h.clock.advance(31 * time.Second)
	if _, err := h.eng.Challenges.Verify(ctx, tn, bc.Challenge.ID, engine.VerifyInput{Code: secTOTP(t, h, secret)}); err != nil {
		t.Fatalf("backup-codes challenge after a login: %v, want verified", err)
	}
}

// An admin reset cancels every open challenge; verifying one afterwards
// does nothing.
func TestResetCancelsOpenChallenges(t *testing.T) {
	ctx := context.Background()
	h := newEvHarness(t)
	tn := h.tenant(t, engine.PolicyPatch{})
	u := engine.UserRef{Tenant: tn, User: "rae"}
	secret := secEnrollTOTP(t, h, u)
	dis, err := h.eng.Lifecycle.StartDisable(ctx, u, engine.Actor{Kind: message.ActorUser})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.Policies.AdminReset(ctx, u, "lost phone", engine.Actor{Kind: message.ActorManager}); err != nil {
		t.Fatal(err)
	}
	if v, _ := h.eng.Challenges.GetChallenge(ctx, tn, dis.Challenge.ID); v.Status != engine.StatusCancelled {
		t.Errorf("challenge after the reset is %s, want cancelled", v.Status)
	}
	_, err = h.eng.Challenges.Verify(ctx, tn, dis.Challenge.ID, engine.VerifyInput{Code: secTOTP(t, h, secret)})
	if secCode(err) != "challenge_cancelled" {
		t.Errorf("verify after the reset: %v, want challenge_cancelled", err)
	}
}

// A new address of an enrolled user waits for both steps; a second change
// replaces the first; a user without a factor changes at once.
func TestEmailChangeWaits(t *testing.T) {
	ctx := context.Background()
	h := newEvHarness(t)
	tn := h.tenant(t, engine.PolicyPatch{})
	u := engine.UserRef{Tenant: tn, User: "eve"}
	old := "eve@example.test"
	if _, err := h.eng.Lifecycle.PutUser(ctx, u, engine.ProfileInput{Email: &old}); err != nil {
		t.Fatal(err)
	}
	secret := secEnrollTOTP(t, h, u)

	one, two, name := "one@example.test", "two@example.test", "Eve"
	r1, err := h.eng.Lifecycle.PutUser(ctx, u, engine.ProfileInput{Email: &one, DisplayName: &name})
	if err != nil || r1.EmailChange == nil || r1.EmailChange.Purpose != engine.PurposeEmailOld {
		t.Fatalf("PutUser of a new address: %+v %v, want step one", r1, err)
	}
	if r1.User.Profile.Email != old || r1.User.Profile.DisplayName != name || !r1.User.EmailChangePending {
		t.Fatalf("user while the change waits: %+v", r1.User)
	}
	r2, err := h.eng.Lifecycle.PutUser(ctx, u, engine.ProfileInput{Email: &two})
	if err != nil || r2.EmailChange == nil {
		t.Fatal(err)
	}
	if v, _ := h.eng.Challenges.GetChallenge(ctx, tn, r1.EmailChange.ID); v.Status != engine.StatusCancelled {
		t.Errorf("replaced change is %s, want cancelled", v.Status)
	}
	res, err := h.eng.Challenges.Verify(ctx, tn, r2.EmailChange.ID, engine.VerifyInput{Code: secTOTP(t, h, secret)})
	if err != nil {
		t.Fatal(err)
	}
	next, _ := res.Result["next_challenge"].(engine.ChallengeView)
	if next.Purpose != engine.PurposeEmailNew || next.Channel != engine.ChannelEmail || next.Destination != "t•••@example.test" {
		t.Fatalf("step one result: %+v", res.Result)
	}
	if a, _ := h.store.Account(ctx, u); a.Profile.Email != old {
		t.Fatalf("address after step one: %s", a.Profile.Email)
	}
	// Same address: nothing happens.
	if r, err := h.eng.Lifecycle.PutUser(ctx, u, engine.ProfileInput{Email: &old}); err != nil || r.EmailChange != nil {
		t.Errorf("PutUser of the current address: %+v %v", r, err)
	}
	empty := ""
	if _, err := h.eng.Lifecycle.PutUser(ctx, u, engine.ProfileInput{Email: &empty}); secCode(err) != "email_required" {
		t.Errorf("clearing an enrolled user's address: %v, want email_required", err)
	}

	// Without a factor the change is immediate.
	w := engine.UserRef{Tenant: tn, User: "walt"}
	a1, a2 := "walt@example.test", "walt2@example.test"
	if _, err := h.eng.Lifecycle.PutUser(ctx, w, engine.ProfileInput{Email: &a1}); err != nil {
		t.Fatal(err)
	}
	r, err := h.eng.Lifecycle.PutUser(ctx, w, engine.ProfileInput{Email: &a2})
	if err != nil || r.EmailChange != nil || r.User.Profile.Email != a2 {
		t.Fatalf("change without a factor: %+v %v", r, err)
	}
	evs, _, err := h.eng.Policies.Events(ctx, tn, engine.EventQuery{User: "walt", Type: message.EvEmailChanged})
	if err != nil || len(evs) != 1 || evs[0].Details["old_email"] != "w•••@example.test" || evs[0].Details["new_email"] != "w•••@example.test" {
		t.Errorf("email_changed of a user without a factor: %+v %v", evs, err)
	}
}
