package engine

import (
	"context"
	"encoding/hex"
	"log/slog"
)

// The settings page's changes: each starts with the same lifecycle call
// the JSON API makes (so the caps, e-mails and audit events are the
// same) and the challenge it issues becomes the code the page asks for.
// The code is checked by Challenges.Verify, like POST
// /v1/challenges/{id}/verify; a follow-up challenge (the new phone after
// the old one, the new factor after a step-up) takes its place.

// changePurposes are the challenges a settings page may ask a code for.
var changePurposes = map[Purpose]bool{
	PurposeEnrollSMS: true, PurposeEnrollTOTP: true, PurposeStepUp: true,
	PurposePhoneOld: true, PurposePhoneNew: true, PurposeBackupCodes: true,
	PurposeEnrollEmail: true, PurposeDisable: true,
}

// enrolPurposes are the challenges that prove a new factor.
var enrolPurposes = map[Purpose]bool{PurposeEnrollSMS: true, PurposeEnrollTOTP: true, PurposeEnrollEmail: true}

// TOTPSetup is a new authenticator app's key while its enrolment waits
// for the app's first code: the page shows it as a QR code and as text.
type TOTPSetup struct {
	Secret string // base32, for typing into the app
	URI    string // otpauth://
	QRPNG  string // base64 PNG of URI
}

// LogValue keeps the key out of logs.
func (TOTPSetup) LogValue() slog.Value { return slog.StringValue("[totp setup]") }

// change runs a lifecycle call for the settings page of prompt id and
// makes its challenge the page's code. A manageOnly change is not offered
// while enrolling (the user has nothing to change yet).
func (e *Prompts) change(ctx context.Context, id, secret string, manageOnly bool, start func(UserRef) (Started, error)) error {
	p, err := e.settings(ctx, id, secret)
	if err != nil {
		return err
	}
	if manageOnly && p.Kind != PromptManage {
		return ErrPromptNotVerified
	}
	st, err := start(UserRef{p.Tenant, p.User})
	if err != nil {
		return err
	}
	return e.update(ctx, p, secret, PromptChange{Challenge: &st.Challenge.ID})
}

// StartSMS starts enrolling phone as the user's text-message factor
// (Lifecycle.StartSMS).
func (e *Prompts) StartSMS(ctx context.Context, id, secret, phone string, actor Actor) error {
	return e.change(ctx, id, secret, false, func(u UserRef) (Started, error) { return e.lifecycle.StartSMS(ctx, u, phone, actor) })
}

// StartTOTP starts enrolling an authenticator app (Lifecycle.StartTOTP).
func (e *Prompts) StartTOTP(ctx context.Context, id, secret string, actor Actor) error {
	return e.change(ctx, id, secret, false, func(u UserRef) (Started, error) { return e.lifecycle.StartTOTP(ctx, u, actor) })
}

// StartEmail starts enrolling the profile's e-mail address as a code
// channel (Lifecycle.StartEmailFactor).
func (e *Prompts) StartEmail(ctx context.Context, id, secret string, actor Actor) error {
	return e.change(ctx, id, secret, false, func(u UserRef) (Started, error) { return e.lifecycle.StartEmailFactor(ctx, u, actor) })
}

// StartDisable asks for a code before turning two-step verification off
// (Lifecycle.StartDisable, which refuses while the policy requires it).
func (e *Prompts) StartDisable(ctx context.Context, id, secret string, actor Actor) error {
	return e.change(ctx, id, secret, true, func(u UserRef) (Started, error) { return e.lifecycle.StartDisable(ctx, u, actor) })
}

// StartPhoneChange starts the dual confirmation of a new number
// (Lifecycle.StartPhoneChange): a code to the current number first.
func (e *Prompts) StartPhoneChange(ctx context.Context, id, secret, phone string, actor Actor) error {
	return e.change(ctx, id, secret, true, func(u UserRef) (Started, error) { return e.lifecycle.StartPhoneChange(ctx, u, phone, actor) })
}

// StartBackupCodes asks for a code before new backup codes
// (Lifecycle.StartBackupCodes).
func (e *Prompts) StartBackupCodes(ctx context.Context, id, secret string, actor Actor) error {
	return e.change(ctx, id, secret, true, func(u UserRef) (Started, error) { return e.lifecycle.StartBackupCodes(ctx, u, actor) })
}

// pendingChange is the settings page's pending change challenge, if any.
func (e *Prompts) pendingChange(ctx context.Context, p Prompt) (Challenge, bool, error) {
	if p.Challenge == "" || p.Kind == PromptLogin || p.Kind == PromptManage && !p.Verified {
		return Challenge{}, false, nil
	}
	c, ok, err := e.store.Challenge(ctx, p.Tenant, p.Challenge)
	if err != nil {
		return Challenge{}, false, Internal(err)
	}
	if !ok || !changePurposes[c.Purpose] || c.viewStatus(e.now()) != StatusPending {
		return Challenge{}, false, nil
	}
	return c, true, nil
}

// ChangeDone is what a verified settings change did: the backup codes
// it issued (a first factor, new codes), which the page shows once, and
// whether it turned two-step verification off.
type ChangeDone struct {
	BackupCodes []string
	Disabled    bool
}

// LogValue keeps the backup codes out of logs.
func (d ChangeDone) LogValue() slog.Value {
	return slog.GroupValue(slog.Int("backup_codes", len(d.BackupCodes)), slog.Bool("disabled", d.Disabled))
}

// VerifyChange checks the code of the settings page's pending change.
func (e *Prompts) VerifyChange(ctx context.Context, id, secret, code string, actor Actor) (ChangeDone, error) {
	return e.verifyChange(ctx, id, secret, func(p Prompt, c Challenge) (VerifyResult, error) {
		return e.challenges.Verify(ctx, p.Tenant, c.ID, VerifyInput{Code: code, Actor: actor})
	})
}

// VerifyChangePasskey answers the settings page's pending change with a
// passkey's assertion (the ceremony PasskeyLoginBegin started), where the
// change asks for a current factor.
func (e *Prompts) VerifyChangePasskey(ctx context.Context, id, secret string, response []byte, actor Actor) (ChangeDone, error) {
	return e.verifyChange(ctx, id, secret, func(p Prompt, c Challenge) (VerifyResult, error) {
		if len(p.Ceremony) == 0 {
			return VerifyResult{}, ErrPasskeyFailed
		}
		if err := e.takeCeremony(ctx, p, secret); err != nil {
			return VerifyResult{}, err
		}
		return e.challenges.VerifyPasskey(ctx, p.Tenant, c.ID, p.Ceremony, response, VerifyInput{Actor: actor})
	})
}

// verifyChange verifies the pending change with check and moves the page
// on: to the follow-up challenge, if any.
func (e *Prompts) verifyChange(ctx context.Context, id, secret string, check func(Prompt, Challenge) (VerifyResult, error)) (ChangeDone, error) {
	p, err := e.settings(ctx, id, secret)
	if err != nil {
		return ChangeDone{}, err
	}
	c, ok, err := e.pendingChange(ctx, p)
	if err != nil {
		return ChangeDone{}, err
	}
	if !ok {
		return ChangeDone{}, ErrChallengeNotFound
	}
	res, err := check(p, c)
	if err != nil {
		return ChangeDone{}, err
	}
	next := ""
	if v, ok := res.Result["next_challenge"].(ChallengeView); ok {
		next = v.ID
	}
	ch := PromptChange{Challenge: &next, Proof: &res.state}
	if p.Kind == PromptEnroll && p.Method == "" && enrolPurposes[c.Purpose] {
		ch.Method = &c.Channel // what the host is told the user set up
	}
	codes, _ := res.Result["backup_codes"].([]string)
	return ChangeDone{BackupCodes: codes, Disabled: c.Purpose == PurposeDisable}, e.update(ctx, p, secret, ch)
}

// AbandonChange stops asking for the pending change's code (the page
// offers the settings again); the challenge expires unused, as one the
// API started and nobody answered.
func (e *Prompts) AbandonChange(ctx context.Context, id, secret string) error {
	p, err := e.settings(ctx, id, secret)
	if err != nil {
		return err
	}
	if _, ok, err := e.pendingChange(ctx, p); err != nil || !ok {
		return err
	}
	none := ""
	return e.update(ctx, p, secret, PromptChange{Challenge: &none})
}

// changePage adds the pending change to a settings page: its code,
// whether a passkey may answer it (it asks for a current factor) and, for
// an authenticator app, the key to scan.
func (e *Prompts) changePage(ctx context.Context, p Prompt, t Tenant, pg *PromptPage) error {
	c, ok, err := e.pendingChange(ctx, p)
	if err != nil || !ok {
		return err
	}
	v := c.view(e.now())
	pg.Change = &v
	pg.ChangeByPasskey = pg.HasPasskey && backupAllowed(c.Purpose)
	if c.Purpose != PurposeEnrollTOTP {
		return nil
	}
	sealed, err := hex.DecodeString(c.Data.Secret)
	if err != nil {
		return Internal(err)
	}
	secret, err := e.totpBox.Open(sealed)
	if err != nil {
		return Internal(err)
	}
	uri := totpURI(t.SenderName, p.User, string(secret))
	qr, err := qrPNG(uri)
	if err != nil {
		return Internal(err)
	}
	pg.TOTP = &TOTPSetup{Secret: string(secret), URI: uri, QRPNG: qr}
	return nil
}
