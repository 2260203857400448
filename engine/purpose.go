package engine

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"time"

	"github.com/stepup-auth/stepup/message"
)

// purpose is what verifying a challenge of one Purpose does.
type purpose struct {
	// act performs the purpose's action on v: it changes v.next and adds
	// to v.commit, v.result and v.events. It is called again, on a fresh
	// v, when the commit loses a race with another change of the account.
	act func(e *Challenges, ctx context.Context, v *verification) error
	// backup: a backup code proves the account holder where a current
	// factor is asked for, never where a new factor is being proven.
	backup bool
}

// purposes is the table Verify dispatches on; a new purpose is a row here
// and a handler below.
var purposes = map[Purpose]purpose{
	PurposeLogin:       {act: (*Challenges).login, backup: true},
	PurposeEnrollSMS:   {act: (*Challenges).enrollSMS},
	PurposeEnrollTOTP:  {act: (*Challenges).enrollTOTP},
	PurposeEnrollEmail: {act: (*Challenges).enrollEmail},
	PurposeStepUp:      {act: (*Challenges).stepUp, backup: true},
	PurposePhoneOld:    {act: (*Challenges).phoneOld, backup: true},
	PurposePhoneNew:    {act: (*Challenges).phoneNew},
	PurposeEmailOld:    {act: (*Challenges).emailOld, backup: true},
	PurposeEmailNew:    {act: (*Challenges).emailNew},
	PurposeDisable:     {act: (*Challenges).disable, backup: true},
	PurposeBackupCodes: {act: (*Challenges).backupCodes, backup: true},
	PurposeManage:      {act: (*Challenges).manage, backup: true},
}

// backupAllowed reports whether a backup code may answer a challenge of p.
func backupAllowed(p Purpose) bool { return purposes[p].backup }

// verification is one right code being turned into its challenge's action:
// what was read for it, and the change being built.
type verification struct {
	t      Tenant
	p      Policy // the user's effective policy
	u      UserRef
	c      Challenge
	login  *LoginRecord // the login of a login challenge, read once (nil: none kept)
	in     VerifyInput
	actor  Actor
	now    time.Time
	prev   Account // the account as read
	next   Account // the account after the action
	how    match
	step   int64 // the TOTP step that matched
	commit Commit
	result map[string]any
	events []Event
}

// giveBackupCodes issues backup codes with a first factor.
func (e *Challenges) giveBackupCodes(v *verification) {
	if len(v.next.BackupCodes) == 0 {
		codes, hashes := e.newBackupCodes(v.u)
		v.next.BackupCodes = hashes
		v.result["backup_codes"] = codes
	}
}

// event adds an audit event of the verification's user.
func (e *Challenges) event(v *verification, typ message.EventType, details map[string]string) {
	ev := e.core.event(v.u.Tenant, v.u.User, typ, v.actor)
	for k, x := range details {
		ev.Details[k] = x
	}
	v.events = append(v.events, ev)
}

// next issues the follow-up challenge a verified step hands on to.
func (v *verification) then(d draft) {
	v.commit.NewChallenges = append(v.commit.NewChallenges, d.ch)
	v.commit.Jobs = append(v.commit.Jobs, d.jobs...)
	v.result["next_challenge"] = d.ch.view(v.now)
}

// cancelOthers cancels every other open challenge of the user: their
// actions were decided on the state this verification changes.
func (e *Challenges) cancelOthers(ctx context.Context, v *verification) error {
	open, err := e.openOthers(ctx, e.store, v.u, v.c.ID)
	v.commit.CancelChallenges = open
	return err
}

func (e *Challenges) login(ctx context.Context, v *verification) error {
	v.result["login_id"] = v.c.LoginID
	// A challenge forced at the next login (a "this wasn't me" report) is
	// spent by a login's code verified, never by one only issued.
	answered := false
	v.commit.ForceChallenge = &answered
	if !v.in.RememberDevice {
		return nil
	}
	if tok := e.rememberDevice(v); tok != "" {
		v.result["device_token"] = tok
	}
	return nil
}

// phoneFactor opens a sealed new number into the SMS factor.
func (e *Challenges) phoneFactor(sealed string, now time.Time) (*PhoneFactor, string, error) {
	num, err := e.openString(sealed)
	if err != nil {
		return nil, "", Internal(err)
	}
	_, region, _ := ParsePhone(num)
	return &PhoneFactor{Sealed: e.piiBox.Seal([]byte(num)), Masked: MaskPhone(num), Country: region, AddedAt: now}, num, nil
}

func (e *Challenges) enrollSMS(_ context.Context, v *verification) error {
	f, num, err := e.phoneFactor(v.c.Data.Phone, v.now)
	if err != nil {
		return err
	}
	v.next.Factors.SMS = f
	e.giveBackupCodes(v)
	e.event(v, message.EvSMSEnrolled, map[string]string{"phone": MaskPhone(num)})
	return nil
}

func (e *Challenges) enrollTOTP(_ context.Context, v *verification) error {
	sealed, _ := hex.DecodeString(v.c.Data.Secret)
	typ := message.EvTOTPEnabled
	if v.next.Factors.TOTP != nil {
		typ = message.EvTOTPReset
	}
	v.next.Factors.TOTP = &TOTPFactor{Sealed: sealed, LastStep: v.step, AddedAt: v.now}
	e.giveBackupCodes(v)
	e.event(v, typ, nil)
	return nil
}

func (e *Challenges) enrollEmail(_ context.Context, v *verification) error {
	v.next.Factors.Email = &EmailFactor{AddedAt: v.now}
	e.giveBackupCodes(v)
	e.event(v, message.EvEmailEnabled, map[string]string{"email": MaskEmail(v.prev.Profile.Email)})
	return nil
}

// stepUp issues the enrolment a verified step-up unlocks (Data.Then).
func (e *Challenges) stepUp(ctx context.Context, v *verification) error {
	data := v.c.Data.client()
	switch v.c.Data.Then {
	case PurposeEnrollSMS:
		num, err := e.openString(v.c.Data.Phone)
		if err != nil {
			return Internal(err)
		}
		if err := e.sendAllowed(ctx, v.t, v.p, v.u, ChannelSMS, num, v.actor); err != nil {
			return err
		}
		data.Phone = v.c.Data.Phone
		v.then(e.challengeFor(v.t, v.u, v.next, PurposeEnrollSMS, ChannelSMS, num, data))
	case PurposeEnrollTOTP:
		sealed, _ := hex.DecodeString(v.c.Data.Secret)
		secret, err := e.totpBox.Open(sealed)
		if err != nil {
			return Internal(err)
		}
		key := totpURI(v.t.SenderName, v.u.User, string(secret))
		qr, err := qrPNG(key)
		if err != nil {
			return Internal(err)
		}
		data.Secret = v.c.Data.Secret
		v.then(e.challengeFor(v.t, v.u, v.next, PurposeEnrollTOTP, ChannelTOTP, "", data))
		v.result["otpauth_uri"], v.result["qr_png"], v.result["secret"] = key, qr, string(secret)
	case PurposeEnrollEmail:
		if v.next.Profile.Email == "" {
			return ErrNoEmail
		}
		if err := e.sendAllowed(ctx, v.t, v.p, v.u, ChannelEmail, v.next.Profile.Email, v.actor); err != nil {
			return err
		}
		v.then(e.challengeFor(v.t, v.u, v.next, PurposeEnrollEmail, ChannelEmail, v.next.Profile.Email, data))
	default:
		return Internal(errors.New("engine: step-up without a next step"))
	}
	return nil
}

// inFlight refuses a step of a change that is no longer the one in flight
// (replaced by a newer one, or ended by a reset).
func inFlight(current, id string, ok bool) error {
	if current != id || !ok {
		return ChallengeStatusError(StatusCancelled)
	}
	return nil
}

func (e *Challenges) phoneOld(ctx context.Context, v *verification) error {
	if err := inFlight(v.prev.PhoneChange, v.c.ID, v.prev.Factors.SMS != nil); err != nil {
		return err
	}
	num, err := e.openString(v.c.Data.Phone)
	if err != nil {
		return Internal(err)
	}
	next, err := e.confirmNew(ctx, v, PurposePhoneNew, ChannelSMS, num)
	if err != nil {
		return err
	}
	v.next.PhoneChange = next
	return nil
}

// confirmNew issues step two of a change of how the user is reached: a
// code to the new destination, within its send limits, carrying the
// sealed new value on. It returns the new challenge's id.
func (e *Challenges) confirmNew(ctx context.Context, v *verification, purpose Purpose, channel Channel, to string) (string, error) {
	if err := e.sendAllowed(ctx, v.t, v.p, v.u, channel, to, v.actor); err != nil {
		return "", err
	}
	data := v.c.Data.client()
	data.Phone, data.Email = v.c.Data.Phone, v.c.Data.Email
	next := e.challengeFor(v.t, v.u, v.prev, purpose, channel, to, data)
	v.then(next)
	return next.ch.ID, nil
}

func (e *Challenges) phoneNew(ctx context.Context, v *verification) error {
	if err := inFlight(v.prev.PhoneChange, v.c.ID, v.prev.Factors.SMS != nil); err != nil {
		return err
	}
	f, num, err := e.phoneFactor(v.c.Data.Phone, v.now)
	if err != nil {
		return err
	}
	old, err := e.factorDestination(v.prev, ChannelSMS)
	if err != nil {
		return Internal(err)
	}
	v.next.Factors.SMS = f
	v.next.PhoneChange, v.next.EmailChange = "", ""
	if err := e.cancelOthers(ctx, v); err != nil {
		return err
	}
	e.event(v, message.EvPhoneChanged, map[string]string{"old_phone": MaskPhone(old), "new_phone": MaskPhone(num)})
	e.forgetDevices(v, message.ReasonPhoneChanged)
	notice := e.job(message.KindSMS, "", message.SMS{To: old, Body: "Your " + v.t.SenderName +
		" two-factor phone number was changed to " + MaskPhone(num) + ". If this was not you, contact " + v.t.SenderName + " now."})
	notice.User = e.userSubject(v.u)
	v.commit.Jobs = append(v.commit.Jobs, notice)
	return nil
}

// forgetDevices forgets the user's remembered devices after a change of
// how the user is reached (a credential change revokes what it vouched for).
func (e *Challenges) forgetDevices(v *verification, why message.Reason) {
	if len(v.next.Devices) == 0 {
		return
	}
	v.next.Devices = nil
	e.event(v, message.EvDevicesForgotten, map[string]string{"reason": string(why)})
}

func (e *Challenges) disable(ctx context.Context, v *verification) error {
	if v.p.Mode == ModeRequired {
		return ErrPolicyRequires2FA
	}
	v.next.Factors, v.next.BackupCodes, v.next.Devices, v.next.PhoneChange, v.next.EmailChange = Factors{}, nil, nil, "", ""
	if err := e.cancelOthers(ctx, v); err != nil {
		return err
	}
	e.event(v, message.EvDisabled, nil)
	return nil
}

// manage only proves the account holder: the hosted settings page that
// asked for it opens (Prompts.Verify).
func (e *Challenges) manage(_ context.Context, v *verification) error {
	v.result["user_id"] = v.u.User
	return nil
}

func (e *Challenges) backupCodes(_ context.Context, v *verification) error {
	codes, hashes := e.newBackupCodes(v.u)
	v.next.BackupCodes = hashes
	v.result["backup_codes"] = codes
	e.event(v, message.EvBackupRegen, nil)
	return nil
}

// rememberDevice adds (or refreshes) the login's device and returns its
// token, or "" when the policy never remembers devices or the login came
// without a device id.
func (e *Challenges) rememberDevice(v *verification) string {
	if v.p.RememberDeviceDays <= 0 || v.login == nil || v.login.Device.DeviceHash == "" {
		return ""
	}
	now := v.now
	tok := e.randomToken(32)
	rec := v.login
	d := Device{ID: e.newID("dv_", ""), DeviceHash: rec.Device.DeviceHash, TokenHash: e.deviceTokenHash(v.u, tok),
		FirstSeen: now, LastSeen: now, ExpiresAt: now.Add(days(v.p.RememberDeviceDays)),
		Browser: rec.Device.Browser, OS: rec.Device.OS, Country: rec.Device.Country, LoginID: rec.ID}
	devs := slices.DeleteFunc(v.next.Devices, func(x Device) bool { return x.DeviceHash == d.DeviceHash || !x.ExpiresAt.After(now) })
	devs = append(devs, d)
	if len(devs) > maxDevices {
		devs = devs[len(devs)-maxDevices:]
	}
	v.next.Devices = devs
	return tok
}

const maxDevices = 20
