package engine

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"time"
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
	// KeptLogins lists the ids of the user's kept login records.
	KeptLogins(ctx context.Context, u UserRef, now time.Time) ([]string, error)
	// EraseUserEvents deletes the tenant-level events (alerts) that name
	// an erased user.
	EraseUserEvents(ctx context.Context, tenant, user string) error
	// RecentLogins returns up to n of the user's kept login records,
	// newest first.
	RecentLogins(ctx context.Context, u UserRef, now time.Time, n int) ([]LoginRecord, error)
}

// Lifecycle errors.
var (
	ErrPolicyRequires2FA = E(KindForbidden, "policy_requires_2fa", "the organisation's policy requires two-factor authentication")
	ErrNoEmail           = E(KindUnprocessable, "no_email", "the user has no e-mail address on file; set one with PUT /v1/users/{id}")
	ErrSamePhone         = E(KindUnprocessable, "phone_unchanged", "the new number is the current one")
	ErrNoSMS             = E(KindUnprocessable, "no_sms_factor", "the user has no phone number to change")
	ErrSMSDisabled       = E(KindUnavailable, "sms_disabled", "text messages are switched off for this organisation")
	ErrAlreadyEnrolled   = E(KindConflict, "already_enrolled", "this factor is already enrolled")
	ErrLastFactor        = E(KindConflict, "last_factor", "this is the user's last factor; turn two-factor authentication off with POST /v1/users/{id}/2fa/disable, which asks for it")
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
func (e *core) challengeOn(ctx context.Context, t Tenant, p Policy, u UserRef, a Account, c Channel, purpose Purpose, data ChallengeData, actor Actor) (draft, error) {
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

// opening is what a lifecycle call starts from.
type opening struct {
	t Tenant
	p Policy // the user's effective policy
	a Account
}

// open loads what every lifecycle call needs; with a channel, the call
// enrols it and the policy must allow it.
func (e *Lifecycle) open(ctx context.Context, u UserRef, enrol Channel) (opening, error) {
	t, p, a, err := e.start(ctx, e.store, u)
	if err != nil {
		return opening{}, err
	}
	if enrol != "" && !slices.Contains(p.AllowedChannels, enrol) {
		return opening{}, ErrChannelNotAllowed
	}
	return opening{t: t, p: p, a: a}, nil
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

// enrol starts enrolling a factor: at once for a user without one (its
// code goes to `to`, "" for an authenticator app; extra is shown with
// it), or, for a user who has one, behind a step-up on the current factor,
// whose verification issues the new factor's challenge (see stepUp in
// purpose.go) — so nobody holding only a password can add a factor.
func (e *Lifecycle) enrol(ctx context.Context, o opening, u UserRef, purpose Purpose, channel Channel, to string, data ChallengeData, actor Actor, extra map[string]any) (Started, error) {
	if o.a.Factors.Any() {
		data.Then = purpose
		c, _ := preferred(o.p, o.a.Factors)
		d, err := e.challengeOn(ctx, o.t, o.p, u, o.a, c, PurposeStepUp, data, actor)
		if err != nil {
			return Started{}, err
		}
		return e.issue(ctx, u, nil, d, map[string]any{"step_up": true})
	}
	if err := e.sendAllowed(ctx, o.t, o.p, u, channel, to, actor); err != nil {
		return Started{}, err
	}
	return e.issue(ctx, u, nil, e.challengeFor(o.t, u, o.a, purpose, channel, to, data), extra)
}

// StartSMS starts enrolling a phone. A user who already has a factor must
// first prove it (a step-up challenge); the code for the new phone follows.
func (e *Lifecycle) StartSMS(ctx context.Context, u UserRef, phone string, actor Actor) (Started, error) {
	o, err := e.open(ctx, u, ChannelSMS)
	if err != nil {
		return Started{}, err
	}
	num, region, err := ParsePhone(phone)
	if err != nil {
		return Started{}, err
	}
	if err := smsCountryAllowed(o.p, region); err != nil {
		return Started{}, err
	}
	if o.a.Factors.SMS != nil {
		return Started{}, ErrAlreadyEnrolled.With("hint", "use POST /v1/users/{id}/phone-change")
	}
	data := clientData(actor)
	data.Phone = e.sealString(num)
	return e.enrol(ctx, o, u, PurposeEnrollSMS, ChannelSMS, num, data, actor, nil)
}

// StartTOTP starts enrolling (or resetting) an authenticator app. The new
// secret is shown at once to a user without a factor, and only after the
// current factor is proven to one who has one.
func (e *Lifecycle) StartTOTP(ctx context.Context, u UserRef, actor Actor) (Started, error) {
	o, err := e.open(ctx, u, ChannelTOTP)
	if err != nil {
		return Started{}, err
	}
	secret, uri, qr, err := e.newTOTPKey(o.t.SenderName, u.User)
	if err != nil {
		return Started{}, Internal(err)
	}
	data := clientData(actor)
	data.Secret = hex.EncodeToString(e.totpBox.Seal([]byte(secret)))
	return e.enrol(ctx, o, u, PurposeEnrollTOTP, ChannelTOTP, "", data, actor,
		map[string]any{"otpauth_uri": uri, "qr_png": qr, "secret": secret})
}

// StartEmailFactor starts enrolling the profile's e-mail as a code channel.
func (e *Lifecycle) StartEmailFactor(ctx context.Context, u UserRef, actor Actor) (Started, error) {
	o, err := e.open(ctx, u, ChannelEmail)
	if err != nil {
		return Started{}, err
	}
	if o.a.Profile.Email == "" {
		return Started{}, ErrNoEmail
	}
	if o.a.Factors.Email != nil {
		return Started{}, ErrAlreadyEnrolled
	}
	return e.enrol(ctx, o, u, PurposeEnrollEmail, ChannelEmail, o.a.Profile.Email, clientData(actor), actor, nil)
}

// StartPhoneChange starts the dual confirmation: a code to the current
// number, then one to the new number. A second request replaces the first.
func (e *Lifecycle) StartPhoneChange(ctx context.Context, u UserRef, phone string, actor Actor) (Started, error) {
	for try := 0; try < 3; try++ {
		o, err := e.open(ctx, u, "")
		if err != nil {
			return Started{}, err
		}
		a := o.a
		if a.Factors.SMS == nil {
			return Started{}, ErrNoSMS
		}
		num, region, err := ParsePhone(phone)
		if err != nil {
			return Started{}, err
		}
		if err := smsCountryAllowed(o.p, region); err != nil {
			return Started{}, err
		}
		cur, err := e.factorDestination(a, ChannelSMS)
		if err != nil {
			return Started{}, Internal(err)
		}
		if cur == num {
			return Started{}, ErrSamePhone
		}
		data := clientData(actor)
		data.Phone = e.sealString(num)
		d, err := e.challengeOn(ctx, o.t, o.p, u, a, ChannelSMS, PurposePhoneOld, data, actor)
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
	o, err := e.open(ctx, u, "")
	if err != nil {
		return Started{}, err
	}
	if o.p.Mode == ModeRequired {
		return Started{}, ErrPolicyRequires2FA
	}
	return e.onFactor(ctx, o, u, PurposeDisable, actor)
}

// StartBackupCodes asks for a code before issuing new backup codes.
func (e *Lifecycle) StartBackupCodes(ctx context.Context, u UserRef, actor Actor) (Started, error) {
	o, err := e.open(ctx, u, "")
	if err != nil {
		return Started{}, err
	}
	return e.onFactor(ctx, o, u, PurposeBackupCodes, actor)
}

// onFactor issues a challenge of purpose on the user's preferred factor.
func (e *Lifecycle) onFactor(ctx context.Context, o opening, u UserRef, purpose Purpose, actor Actor) (Started, error) {
	c, ok := preferred(o.p, o.a.Factors)
	if !ok {
		return Started{}, ErrNoFactor
	}
	d, err := e.challengeOn(ctx, o.t, o.p, u, o.a, c, purpose, clientData(actor), actor)
	if err != nil {
		return Started{}, err
	}
	return e.issue(ctx, u, nil, d, nil)
}

// smsCountryAllowed refuses a number outside the policy's SMS countries.
func smsCountryAllowed(p Policy, region string) error {
	if len(p.SMSCountries) > 0 && !slices.Contains(p.SMSCountries, region) {
		return ErrPhoneCountry.With("country", region)
	}
	return nil
}
