package engine

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"time"

	"github.com/stepup-auth/stepup/message"
)

// Lifecycle enrols factors and starts the changes that need a code (phone
// change, disable, new backup codes); it also keeps users' profiles and
// remembered devices, and erases users.
type Lifecycle struct {
	*core
	store lifecycleStore
}

// lifecycleStore is what Lifecycle reads and changes.
type lifecycleStore interface {
	accountStore
	LoadLogin(ctx context.Context, u UserRef, q LoginQuery) (LoginState, error)
	Challenge(ctx context.Context, tenant, id string) (Challenge, bool, error)
	OpenChallenges(ctx context.Context, u UserRef, now time.Time) ([]string, error)
}

// Lifecycle errors.
var (
	ErrPolicyRequires2FA = E(KindForbidden, "policy_requires_2fa", "the organisation's policy requires two-factor authentication")
	ErrNoEmail           = E(KindUnprocessable, "no_email", "the user has no e-mail address on file; set one with PUT /v1/users/{id}")
	ErrSamePhone         = E(KindUnprocessable, "phone_unchanged", "the new number is the current one")
	ErrNoSMS             = E(KindUnprocessable, "no_sms_factor", "the user has no phone number to change")
	ErrSMSDisabled       = E(KindUnavailable, "sms_disabled", "text messages are switched off for this organisation")
	ErrAlreadyEnrolled   = E(KindConflict, "already_enrolled", "this factor is already enrolled")
)

// Started is the answer to a lifecycle call that needs a code.
type Started struct {
	Challenge ChallengeView  `json:"challenge"`
	Extra     map[string]any `json:"-"`
}

// preferred picks the channel to challenge a user on: the policy's order
// among the user's factors, or — so a policy change never locks anyone
// out — any factor the user has.
func preferred(p Policy, f Factors) (Channel, bool) {
	for _, c := range p.AllowedChannels {
		if f.Has(c) {
			return c, true
		}
	}
	cs := f.Channels()
	if len(cs) == 0 {
		return "", false
	}
	return cs[0], true
}

// factorDestination opens where a factor's codes go.
func (e *core) factorDestination(a Account, c Channel) (string, error) {
	switch c {
	case ChannelSMS:
		b, err := e.piiBox.Open(a.Factors.SMS.Sealed)
		return string(b), err
	case ChannelEmail:
		if a.Profile.Email == "" {
			return "", ErrNoEmail
		}
		return a.Profile.Email, nil
	}
	return "", nil
}

// challengeOn prepares a challenge on the user's factor of channel c,
// checking the SMS limits when it sends one.
func (e *core) challengeOn(ctx context.Context, t Tenant, p Policy, u UserRef, a Account, c Channel, purpose Purpose, data map[string]string, actor Actor) (draft, error) {
	to, err := e.factorDestination(a, c)
	if err != nil {
		return draft{}, AsError(err)
	}
	if err := e.sendAllowed(ctx, t, p, u, c, to, actor); err != nil {
		return draft{}, err
	}
	return e.challengeFor(t, u, a, purpose, c, to, data), nil
}

// start loads what every lifecycle call needs.
func (e *core) start(ctx context.Context, accounts accountStore, u UserRef) (Tenant, Policy, Account, error) {
	if err := ValidUserID(u.User); err != nil {
		return Tenant{}, Policy{}, Account{}, err
	}
	t, err := e.tenant(ctx, u.Tenant)
	if err != nil {
		return Tenant{}, Policy{}, Account{}, err
	}
	pol, err := e.loadPolicy(ctx, u.Tenant)
	if err != nil {
		return Tenant{}, Policy{}, Account{}, err
	}
	a, err := accounts.Account(ctx, u)
	if err != nil {
		return Tenant{}, Policy{}, Account{}, Internal(err)
	}
	return t, pol.Effective(a.Group), a, nil
}

func actorData(a Actor) map[string]string {
	d := map[string]string{}
	if a.IP != "" {
		d["ip"] = a.IP
	}
	if a.UserAgent != "" {
		d["ua"] = a.UserAgent
	}
	return d
}

// issue commits new challenges (and optional account change) and answers
// with the first one.
func (e *Lifecycle) issue(ctx context.Context, u UserRef, a *Account, d draft, extra map[string]any) (Started, error) {
	c := Commit{Version: -1, NewChallenges: []Challenge{d.ch}, Jobs: d.jobs, Now: e.now()}
	if a != nil {
		c.Version, c.Account = a.Version, a
	}
	if err := e.store.Commit(ctx, u, c); err != nil {
		return Started{}, AsError(err)
	}
	return Started{Challenge: d.ch.view(e.now()), Extra: extra}, nil
}

// StartSMS starts enrolling a phone. A user who already has a factor must
// first prove it (a step-up challenge); the code for the new phone follows.
func (e *Lifecycle) StartSMS(ctx context.Context, u UserRef, phone string, actor Actor) (Started, error) {
	t, p, a, err := e.start(ctx, e.store, u)
	if err != nil {
		return Started{}, err
	}
	if !slices.Contains(p.AllowedChannels, ChannelSMS) {
		return Started{}, ErrChannelNotAllowed
	}
	num, region, err := ParsePhone(phone)
	if err != nil {
		return Started{}, err
	}
	if err := smsCountryAllowed(p, region); err != nil {
		return Started{}, err
	}
	if a.Factors.SMS != nil {
		return Started{}, ErrAlreadyEnrolled.With("hint", "use POST /v1/users/{id}/phone-change")
	}
	data := actorData(actor)
	data["phone"] = e.sealString(num)
	if a.Factors.Any() {
		data["then"] = string(PurposeEnrollSMS)
		return e.stepUp(ctx, t, p, u, a, data, actor)
	}
	if err := e.smsAllowed(ctx, t, p, u, num, actor); err != nil {
		return Started{}, err
	}
	return e.issue(ctx, u, nil, e.challengeFor(t, u, a, PurposeEnrollSMS, ChannelSMS, num, data), nil)
}

func (e *Lifecycle) stepUp(ctx context.Context, t Tenant, p Policy, u UserRef, a Account, data map[string]string, actor Actor) (Started, error) {
	c, _ := preferred(p, a.Factors)
	d, err := e.challengeOn(ctx, t, p, u, a, c, PurposeStepUp, data, actor)
	if err != nil {
		return Started{}, err
	}
	return e.issue(ctx, u, nil, d, map[string]any{"step_up": true})
}

// StartTOTP starts enrolling (or resetting) an authenticator app.
func (e *Lifecycle) StartTOTP(ctx context.Context, u UserRef, actor Actor) (Started, error) {
	t, p, a, err := e.start(ctx, e.store, u)
	if err != nil {
		return Started{}, err
	}
	if !slices.Contains(p.AllowedChannels, ChannelTOTP) {
		return Started{}, ErrChannelNotAllowed
	}
	secret, uri, qr, err := e.newTOTPKey(t.SenderName, u.User)
	if err != nil {
		return Started{}, Internal(err)
	}
	data := actorData(actor)
	data["secret"] = hex.EncodeToString(e.totpBox.Seal([]byte(secret)))
	if a.Factors.Any() {
		// The new secret is shown only after the current factor is proven.
		data["then"] = string(PurposeEnrollTOTP)
		return e.stepUp(ctx, t, p, u, a, data, actor)
	}
	d := e.challengeFor(t, u, a, PurposeEnrollTOTP, ChannelTOTP, "", data)
	return e.issue(ctx, u, nil, d, map[string]any{"otpauth_uri": uri, "qr_png": qr, "secret": secret})
}

// StartEmailFactor starts enrolling the profile's e-mail as a code channel.
func (e *Lifecycle) StartEmailFactor(ctx context.Context, u UserRef, actor Actor) (Started, error) {
	t, p, a, err := e.start(ctx, e.store, u)
	if err != nil {
		return Started{}, err
	}
	if !slices.Contains(p.AllowedChannels, ChannelEmail) {
		return Started{}, ErrChannelNotAllowed
	}
	if a.Profile.Email == "" {
		return Started{}, ErrNoEmail
	}
	if a.Factors.Email != nil {
		return Started{}, ErrAlreadyEnrolled
	}
	data := actorData(actor)
	if a.Factors.Any() {
		data["then"] = string(PurposeEnrollEmail)
		return e.stepUp(ctx, t, p, u, a, data, actor)
	}
	if err := e.emailAllowed(ctx, t, p, u, a.Profile.Email, actor); err != nil {
		return Started{}, err
	}
	return e.issue(ctx, u, nil, e.challengeFor(t, u, a, PurposeEnrollEmail, ChannelEmail, a.Profile.Email, data), nil)
}

// StartPhoneChange starts the dual confirmation: a code to the current
// number, then one to the new number. A second request replaces the first.
func (e *Lifecycle) StartPhoneChange(ctx context.Context, u UserRef, phone string, actor Actor) (Started, error) {
	for try := 0; try < 3; try++ {
		t, p, a, err := e.start(ctx, e.store, u)
		if err != nil {
			return Started{}, err
		}
		if a.Factors.SMS == nil {
			return Started{}, ErrNoSMS
		}
		num, region, err := ParsePhone(phone)
		if err != nil {
			return Started{}, err
		}
		if err := smsCountryAllowed(p, region); err != nil {
			return Started{}, err
		}
		cur, err := e.factorDestination(a, ChannelSMS)
		if err != nil {
			return Started{}, Internal(err)
		}
		if cur == num {
			return Started{}, ErrSamePhone
		}
		data := actorData(actor)
		data["phone"] = e.sealString(num)
		d, err := e.challengeOn(ctx, t, p, u, a, ChannelSMS, PurposePhoneOld, data, actor)
		if err != nil {
			return Started{}, err
		}
		c := Commit{Version: a.Version, Account: &a, NewChallenges: []Challenge{d.ch}, Jobs: d.jobs, Now: e.now()}
		if a.PhoneChange != "" {
			c.CancelChallenges = []string{a.PhoneChange}
		}
		a.PhoneChange = d.ch.ID
		a.UpdatedAt = e.now()
		err = e.store.Commit(ctx, u, c)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return Started{}, AsError(err)
		}
		return Started{Challenge: d.ch.view(e.now())}, nil
	}
	return Started{}, ErrConflict
}

// StartDisable asks for a code before turning 2FA off.
func (e *Lifecycle) StartDisable(ctx context.Context, u UserRef, actor Actor) (Started, error) {
	t, p, a, err := e.start(ctx, e.store, u)
	if err != nil {
		return Started{}, err
	}
	if p.Mode == ModeRequired {
		return Started{}, ErrPolicyRequires2FA
	}
	return e.onFactor(ctx, t, p, u, a, PurposeDisable, actor)
}

// StartBackupCodes asks for a code before issuing new backup codes.
func (e *Lifecycle) StartBackupCodes(ctx context.Context, u UserRef, actor Actor) (Started, error) {
	t, p, a, err := e.start(ctx, e.store, u)
	if err != nil {
		return Started{}, err
	}
	return e.onFactor(ctx, t, p, u, a, PurposeBackupCodes, actor)
}

func (e *Lifecycle) onFactor(ctx context.Context, t Tenant, p Policy, u UserRef, a Account, purpose Purpose, actor Actor) (Started, error) {
	c, ok := preferred(p, a.Factors)
	if !ok {
		return Started{}, ErrNoFactor
	}
	d, err := e.challengeOn(ctx, t, p, u, a, c, purpose, actorData(actor), actor)
	if err != nil {
		return Started{}, err
	}
	return e.issue(ctx, u, nil, d, nil)
}

// act computes what verifying c does: the result, and the commit that
// performs it together with the challenge's verification.
func (e *Challenges) act(ctx context.Context, t Tenant, u UserRef, c Challenge, a Account, how match, step int64, in VerifyInput) (map[string]any, Commit, error) {
	now := e.now()
	actor := Actor{Kind: message.ActorUser, IP: c.Data["ip"], UserAgent: c.Data["ua"]}
	if in.Actor.IP != "" {
		actor.IP, actor.UserAgent = in.Actor.IP, in.Actor.UserAgent
	}
	res := map[string]any{}
	cm := Commit{Version: a.Version}
	na := a // the account after the action
	na.BackupCodes = slices.Clone(a.BackupCodes)
	na.Devices = slices.Clone(a.Devices)
	na.UpdatedAt = now
	if !na.Exists {
		na.CreatedAt = now
	}
	var events []Event
	pol, err := e.loadPolicy(ctx, u.Tenant)
	if err != nil {
		return nil, cm, err
	}
	p := pol.Effective(a.Group)

	switch how {
	case backupMatch:
		h := e.backupHash(u, in.Code)
		na.BackupCodes = slices.DeleteFunc(na.BackupCodes, func(b string) bool { return b == h })
		ev := e.event(u.Tenant, u.User, message.EvBackupUsed, actor)
		ev.Details["remaining"] = itoa(len(na.BackupCodes))
		events = append(events, ev)
		res["backup_codes_left"] = len(na.BackupCodes)
	case totpMatch:
		if c.Purpose != PurposeEnrollTOTP && na.Factors.TOTP != nil {
			f := *na.Factors.TOTP
			f.LastStep = step
			na.Factors.TOTP = &f
		}
	}
	giveBackupCodes := func() {
		if len(na.BackupCodes) == 0 {
			codes, hashes := e.newBackupCodes(u)
			na.BackupCodes = hashes
			res["backup_codes"] = codes
		}
	}
	switch c.Purpose {
	case PurposeLogin:
		res["login_id"] = c.LoginID
		if in.RememberDevice {
			tok, err := e.rememberDevice(ctx, u, &na, c, p)
			if err != nil {
				return nil, cm, err
			}
			if tok != "" {
				res["device_token"] = tok
			}
		}
	case PurposeEnrollSMS:
		num, err := e.openString(c.Data["phone"])
		if err != nil {
			return nil, cm, Internal(err)
		}
		_, region, _ := ParsePhone(num)
		na.Factors.SMS = &PhoneFactor{Sealed: e.piiBox.Seal([]byte(num)), Masked: MaskPhone(num), Country: region, AddedAt: now}
		giveBackupCodes()
		ev := e.event(u.Tenant, u.User, message.EvSMSEnrolled, actor)
		ev.Details["phone"] = MaskPhone(num)
		events = append(events, ev)
	case PurposeEnrollTOTP:
		sealed, _ := hex.DecodeString(c.Data["secret"])
		typ := message.EvTOTPEnabled
		if na.Factors.TOTP != nil {
			typ = message.EvTOTPReset
		}
		na.Factors.TOTP = &TOTPFactor{Sealed: sealed, LastStep: step, AddedAt: now}
		giveBackupCodes()
		events = append(events, e.event(u.Tenant, u.User, typ, actor))
	case PurposeEnrollEmail:
		na.Factors.Email = &EmailFactor{AddedAt: now}
		giveBackupCodes()
		ev := e.event(u.Tenant, u.User, message.EvEmailEnabled, actor)
		ev.Details["email"] = MaskEmail(a.Profile.Email)
		events = append(events, ev)
	case PurposeStepUp:
		next, extra, err := e.afterStepUp(ctx, t, p, u, na, c, actor)
		if err != nil {
			return nil, cm, err
		}
		cm.NewChallenges, cm.Jobs = []Challenge{next.ch}, next.jobs
		res["next_challenge"] = next.ch.view(e.now())
		for k, v := range extra {
			res[k] = v
		}
	case PurposePhoneOld:
		if a.PhoneChange != c.ID || a.Factors.SMS == nil {
			return nil, cm, ChallengeStatusError(StatusCancelled)
		}
		num, err := e.openString(c.Data["phone"])
		if err != nil {
			return nil, cm, Internal(err)
		}
		data := map[string]string{"phone": c.Data["phone"], "ip": c.Data["ip"], "ua": c.Data["ua"]}
		if err := e.smsAllowed(ctx, t, p, u, num, actor); err != nil {
			return nil, cm, err
		}
		next := e.challengeFor(t, u, a, PurposePhoneNew, ChannelSMS, num, data)
		na.PhoneChange = next.ch.ID
		cm.NewChallenges, cm.Jobs = []Challenge{next.ch}, next.jobs
		res["next_challenge"] = next.ch.view(e.now())
	case PurposePhoneNew:
		if a.PhoneChange != c.ID || a.Factors.SMS == nil {
			return nil, cm, ChallengeStatusError(StatusCancelled)
		}
		num, err := e.openString(c.Data["phone"])
		if err != nil {
			return nil, cm, Internal(err)
		}
		old, err := e.factorDestination(a, ChannelSMS)
		if err != nil {
			return nil, cm, Internal(err)
		}
		_, region, _ := ParsePhone(num)
		na.Factors.SMS = &PhoneFactor{Sealed: e.piiBox.Seal([]byte(num)), Masked: MaskPhone(num), Country: region, AddedAt: now}
		na.PhoneChange, na.EmailChange = "", ""
		if cm.CancelChallenges, err = e.openOthers(ctx, e.store, u, c.ID); err != nil {
			return nil, cm, err
		}
		ev := e.event(u.Tenant, u.User, message.EvPhoneChanged, actor)
		ev.Details["old_phone"], ev.Details["new_phone"] = MaskPhone(old), MaskPhone(num)
		events = append(events, ev)
		if len(na.Devices) > 0 {
			na.Devices = nil
			fe := e.event(u.Tenant, u.User, message.EvDevicesForgotten, actor)
			fe.Details["reason"] = string(message.ReasonPhoneChanged)
			events = append(events, fe)
		}
		cm.Jobs = append(cm.Jobs, e.job(message.KindSMS, "", message.SMS{To: old, Body: "Your " + t.SenderName +
			" two-factor phone number was changed to " + MaskPhone(num) + ". If this was not you, contact " + t.SenderName + " now."}))
	case PurposeEmailOld, PurposeEmailNew:
		evs, out, err := e.actEmailChange(ctx, t, p, u, c, a, &na, &cm, actor)
		if err != nil {
			return nil, cm, err
		}
		events = append(events, evs...)
		for k, v := range out {
			res[k] = v
		}
	case PurposeDisable:
		if p.Mode == ModeRequired {
			return nil, cm, ErrPolicyRequires2FA
		}
		na.Factors, na.BackupCodes, na.Devices, na.PhoneChange, na.EmailChange = Factors{}, nil, nil, "", ""
		if cm.CancelChallenges, err = e.openOthers(ctx, e.store, u, c.ID); err != nil {
			return nil, cm, err
		}
		events = append(events, e.event(u.Tenant, u.User, message.EvDisabled, actor))
	case PurposeBackupCodes:
		codes, hashes := e.newBackupCodes(u)
		na.BackupCodes = hashes
		res["backup_codes"] = codes
		events = append(events, e.event(u.Tenant, u.User, message.EvBackupRegen, actor))
	default:
		return nil, cm, Internal(errors.New("engine: unknown purpose " + string(c.Purpose)))
	}
	na.Exists = true
	cm.Account = &na
	for i := range events {
		cm.Jobs = append(cm.Jobs, e.userNotice(t, na, &events[i])...)
	}
	cm.Events = events
	return res, cm, nil
}

// afterStepUp prepares the challenge that a verified step-up unlocks.
func (e *Challenges) afterStepUp(ctx context.Context, t Tenant, p Policy, u UserRef, a Account, c Challenge, actor Actor) (draft, map[string]any, error) {
	data := map[string]string{"ip": c.Data["ip"], "ua": c.Data["ua"]}
	switch Purpose(c.Data["then"]) {
	case PurposeEnrollSMS:
		num, err := e.openString(c.Data["phone"])
		if err != nil {
			return draft{}, nil, Internal(err)
		}
		if err := e.smsAllowed(ctx, t, p, u, num, actor); err != nil {
			return draft{}, nil, err
		}
		data["phone"] = c.Data["phone"]
		return e.challengeFor(t, u, a, PurposeEnrollSMS, ChannelSMS, num, data), nil, nil
	case PurposeEnrollTOTP:
		sealed, _ := hex.DecodeString(c.Data["secret"])
		secret, err := e.totpBox.Open(sealed)
		if err != nil {
			return draft{}, nil, Internal(err)
		}
		data["secret"] = c.Data["secret"]
		key := totpURI(t.SenderName, u.User, string(secret))
		qr, err := qrPNG(key)
		if err != nil {
			return draft{}, nil, Internal(err)
		}
		return e.challengeFor(t, u, a, PurposeEnrollTOTP, ChannelTOTP, "", data),
			map[string]any{"otpauth_uri": key, "qr_png": qr, "secret": string(secret)}, nil
	case PurposeEnrollEmail:
		if a.Profile.Email == "" {
			return draft{}, nil, ErrNoEmail
		}
		if err := e.emailAllowed(ctx, t, p, u, a.Profile.Email, actor); err != nil {
			return draft{}, nil, err
		}
		return e.challengeFor(t, u, a, PurposeEnrollEmail, ChannelEmail, a.Profile.Email, data), nil, nil
	}
	return draft{}, nil, Internal(errors.New("engine: step-up without a next step"))
}

// rememberDevice adds (or refreshes) the login's device and returns its
// token, or "" when the policy never remembers devices.
func (e *Challenges) rememberDevice(ctx context.Context, u UserRef, a *Account, c Challenge, p Policy) (string, error) {
	if p.RememberDeviceDays <= 0 || c.LoginID == "" {
		return "", nil
	}
	rec, ok, err := e.store.Login(ctx, c.LoginID)
	if err != nil {
		return "", Internal(err)
	}
	if !ok || rec.Device.DeviceHash == "" {
		return "", nil // no device id was given: nothing to bind a token to
	}
	now := e.now()
	tok := e.randomToken(32)
	d := Device{ID: e.newID("dv_", ""), DeviceHash: rec.Device.DeviceHash, TokenHash: e.deviceTokenHash(u, tok),
		FirstSeen: now, LastSeen: now, ExpiresAt: now.Add(days(p.RememberDeviceDays)),
		Browser: rec.Device.Browser, OS: rec.Device.OS, Country: rec.Device.Country}
	a.Devices = slices.DeleteFunc(a.Devices, func(x Device) bool { return x.DeviceHash == d.DeviceHash || !x.ExpiresAt.After(now) })
	a.Devices = append(a.Devices, d)
	if len(a.Devices) > maxDevices {
		a.Devices = a.Devices[len(a.Devices)-maxDevices:]
	}
	return tok, nil
}

const maxDevices = 20

func (e *core) deviceTokenHash(u UserRef, tok string) string {
	return hex.EncodeToString(e.tokenMAC.Sum("device", u.Tenant, u.User, tok))
}

// afterVerify does what follows a verification outside its atomic commit:
// a verified login teaches the history.
func (e *Challenges) afterVerify(ctx context.Context, u UserRef, c Challenge) {
	if c.Purpose != PurposeLogin || c.LoginID == "" {
		return
	}
	rec, ok, err := e.store.Login(ctx, c.LoginID)
	if err != nil || !ok {
		e.log.Warn("verified login not learned", "login_id", c.LoginID, "err", err)
		return
	}
	if err := e.store.Learn(ctx, u, rec, e.learnOptions(rec)); err != nil {
		e.log.Warn("verified login not learned", "login_id", c.LoginID, "err", err)
	}
}

func smsCountryAllowed(p Policy, region string) error {
	if len(p.SMSCountries) > 0 && !slices.Contains(p.SMSCountries, region) {
		return ErrPhoneCountry.With("country", region)
	}
	return nil
}

// historyTTL is how long history lives without a login.
func (e *core) historyTTL() time.Duration { return days(e.opt.HistoryDays) }
