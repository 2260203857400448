package engine

import (
	"context"
	"errors"
	"slices"
	"time"

	"golang.org/x/text/language"

	"github.com/stepup-auth/stepup/message"
)

// ProfileInput is the body of PUT /v1/users/{id}; nil fields stay as they are.
type ProfileInput struct {
	Email       *string
	DisplayName *string
	Locale      *string
	TimeZone    *string
	Group       *string
	// Actor is who asks (the end user's IP and user agent, which the
	// mails about an address change quote); the zero Actor is the user.
	Actor Actor
}

// FactorView is one enrolled factor, masked.
type FactorView struct {
	Channel     Channel   `json:"channel"`
	Destination string    `json:"destination,omitempty"`
	AddedAt     time.Time `json:"added_at"`
}

// DeviceView is one remembered device, without raw ids or IPs.
type DeviceView struct {
	ID        string    `json:"id"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	ExpiresAt time.Time `json:"expires_at"`
	Browser   string    `json:"browser,omitempty"`
	OS        string    `json:"os,omitempty"`
	Country   string    `json:"country,omitempty"`
}

// UserView is a user's 2FA status.
type UserView struct {
	UserID   string       `json:"user_id"`
	Profile  Profile      `json:"profile"`
	Group    string       `json:"group,omitempty"`
	Enrolled bool         `json:"enrolled"`
	Factors  []FactorView `json:"factors"`
	// Passkeys are the user's WebAuthn credentials (also one "passkey"
	// entry of Factors).
	Passkeys           []PasskeyView `json:"passkeys,omitempty"`
	BackupCodesLeft    int           `json:"backup_codes_left"`
	RememberedDevices  int           `json:"remembered_devices"`
	GraceLoginsLeft    *int          `json:"grace_logins_left,omitempty"`
	PhoneChangePending bool          `json:"phone_change_pending"`
	EmailChangePending bool          `json:"email_change_pending"`
	Mode               Mode          `json:"mode"`
	CreatedAt          time.Time     `json:"created_at,omitzero"`
	UpdatedAt          time.Time     `json:"updated_at,omitzero"`
}

// PutUserResult is the answer of PutUser: the user as stored and, when a
// new e-mail address waits for confirmation, the challenge of step one.
type PutUserResult struct {
	User        UserView
	EmailChange *ChallengeView
}

// PutUser registers or updates a user's profile (and group). A new e-mail
// address of a user with a factor is only started here: it is switched
// when the user has proven a current factor and then a code sent to the
// new address (purposes email_change_old and email_change_new).
func (e *Lifecycle) PutUser(ctx context.Context, u UserRef, in ProfileInput) (PutUserResult, error) {
	if err := ValidUserID(u.User); err != nil {
		return PutUserResult{}, err
	}
	if in.Email != nil && *in.Email != "" && !validEmail(*in.Email) {
		return PutUserResult{}, Invalid("email", "not an e-mail address")
	}
	if in.DisplayName != nil && (len(*in.DisplayName) > 100 || !printable(*in.DisplayName)) {
		return PutUserResult{}, Invalid("display_name", "at most 100 printable characters")
	}
	if in.Locale != nil && *in.Locale != "" {
		if _, err := language.Parse(*in.Locale); err != nil || len(*in.Locale) > 35 {
			return PutUserResult{}, Invalid("locale", "not a BCP 47 language tag, e.g. en or en-GB")
		}
	}
	if in.TimeZone != nil && *in.TimeZone != "" {
		if _, err := time.LoadLocation(*in.TimeZone); err != nil || len(*in.TimeZone) > 64 {
			return PutUserResult{}, Invalid("time_zone", "not an IANA time zone, e.g. Europe/London")
		}
	}
	if in.Actor.Kind == "" {
		in.Actor.Kind = message.ActorUser
	}
	pol, err := e.loadPolicy(ctx, u.Tenant)
	if err != nil {
		return PutUserResult{}, err
	}
	if in.Group != nil && *in.Group != "" {
		if _, ok := pol.Groups[*in.Group]; !ok {
			return PutUserResult{}, E(KindUnprocessable, "unknown_group", "the policy has no group of that name").With("field", "group")
		}
	}
	t, err := e.tenant(ctx, u.Tenant)
	if err != nil {
		return PutUserResult{}, err
	}
	var pending *ChallengeView
	err = retryConflicts(func() (err error) {
		pending, err = e.putProfile(ctx, t, pol, u, in)
		return err
	})
	if err != nil {
		return PutUserResult{}, err
	}
	v, err := e.GetUser(ctx, u)
	return PutUserResult{User: v, EmailChange: pending}, err
}

// putProfile applies one try of a profile update to the stored account:
// every field at once, but the security address of a user with a factor,
// which only starts its confirmed change (the challenge returned).
func (e *Lifecycle) putProfile(ctx context.Context, t Tenant, pol *compiled, u UserRef, in ProfileInput) (*ChallengeView, error) {
	a, err := e.store.Account(ctx, u)
	if err != nil {
		return nil, Internal(err)
	}
	now := e.now()
	if !a.Exists {
		a.CreatedAt = now
	}
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&a.Profile.DisplayName, in.DisplayName)
	set(&a.Profile.Locale, in.Locale)
	set(&a.Profile.TimeZone, in.TimeZone)
	was := a.Group
	set(&a.Group, in.Group)
	c := Commit{Version: a.Version, Account: &a, Now: now}
	if p := pol.Effective(a.Group); a.Factors.Any() && unprotected(p) && !unprotected(pol.Effective(was)) {
		// Moved into a group whose sign-ins ask for no code: the user
		// hears of it as of a mode switched off, so a stolen app key
		// cannot disarm an account unnoticed.
		ev := e.event(u.Tenant, u.User, message.EvModeOff, in.Actor)
		ev.Details["group"], ev.Details["moved"] = a.Group, "yes"
		if p.Mode != ModeOff {
			ev.Details["enforcement"] = string(p.Enforcement)
		}
		c.Events, c.Jobs = []Event{ev}, e.userNotice(t, a, &ev)
	}
	var pending *ChallengeView
	if in.Email != nil && *in.Email != a.Profile.Email {
		switch {
		case !a.Factors.Any():
			if err := e.changeEmailNow(ctx, t, u, &a, *in.Email, in.Actor, &c); err != nil {
				return nil, err
			}
		case *in.Email == "":
			return nil, ErrEmailRequired
		default:
			v, err := e.startEmailChange(ctx, t, pol.Effective(a.Group), u, &a, *in.Email, in.Actor, &c)
			if err != nil {
				return nil, err
			}
			pending = &v
		}
	}
	a.Exists, a.UpdatedAt = true, now
	return pending, AsErrorOrNil(e.store.Commit(ctx, u, c))
}

// update applies fn to the user's account with optimistic concurrency; fn
// returns the events and jobs that go with the change.
func (e *Lifecycle) update(ctx context.Context, u UserRef, fn func(a *Account) ([]Event, []Job, error)) error {
	return e.updateCancel(ctx, u, nil, fn)
}

// updateCancel is update that also cancels the challenges cancel.
func (e *Lifecycle) updateCancel(ctx context.Context, u UserRef, cancel []string, fn func(a *Account) ([]Event, []Job, error)) error {
	return retryConflicts(func() error {
		a, err := e.store.Account(ctx, u)
		if err != nil {
			return Internal(err)
		}
		ver := a.Version
		now := e.now()
		if !a.Exists {
			a.CreatedAt = now
		}
		evs, jobs, err := fn(&a)
		if err != nil {
			return err
		}
		a.Exists, a.UpdatedAt = true, now
		return AsErrorOrNil(e.store.Commit(ctx, u, Commit{Version: ver, Account: &a, Events: evs, Jobs: jobs, Now: now, CancelChallenges: cancel}))
	})
}

// GetUser returns a user's 2FA status.
func (e *Lifecycle) GetUser(ctx context.Context, u UserRef) (UserView, error) {
	if err := ValidUserID(u.User); err != nil {
		return UserView{}, err
	}
	now := e.now()
	// One read serves both: a user is known by an account (profile,
	// factors) or by logins alone, and the grace count lives beside them.
	st, err := e.store.LoadLogin(ctx, u, LoginQuery{Now: now, Window: velocityWindow})
	if err != nil {
		return UserView{}, Internal(err)
	}
	a := st.Account
	if !a.Exists && st.UserLogins == 0 && st.GraceEpoch == "" {
		return UserView{}, ErrUserNotFound
	}
	pol, err := e.compiled(st.Policy)
	if err != nil {
		return UserView{}, err
	}
	p := pol.Effective(a.Group)
	v := UserView{UserID: u.User, Profile: a.Profile, Group: a.Group, Enrolled: a.Factors.Any(),
		Factors: []FactorView{}, BackupCodesLeft: len(a.BackupCodes), Mode: p.Mode,
		CreatedAt: a.CreatedAt, UpdatedAt: a.UpdatedAt}
	if v.PhoneChangePending, err = e.changePending(ctx, u, a.PhoneChange); err != nil {
		return UserView{}, err
	}
	if v.EmailChangePending, err = e.changePending(ctx, u, a.EmailChange); err != nil {
		return UserView{}, err
	}
	for _, d := range a.Devices {
		if now.Before(deviceExpiry(d, p)) {
			v.RememberedDevices++
		}
	}
	v.Factors = factorViews(a)
	for _, k := range a.Factors.Passkeys {
		v.Passkeys = append(v.Passkeys, k.view())
	}
	if p.Mode == ModeRequired && !v.Enrolled {
		left := p.GraceLogins
		if st.GraceEpoch == pol.epoch(a.Group) {
			left = max(left-st.GraceUsed, 0)
		}
		v.GraceLoginsLeft = &left
	}
	return v, nil
}

// changePending reports whether the change whose current challenge is id (""
// for none) is still waiting for its code.
func (e *Lifecycle) changePending(ctx context.Context, u UserRef, id string) (bool, error) {
	if id == "" {
		return false, nil
	}
	c, ok, err := e.store.Challenge(ctx, u.Tenant, id)
	if err != nil {
		return false, Internal(err)
	}
	return ok && c.viewStatus(e.now()) == StatusPending, nil
}

// Devices lists a user's remembered devices.
func (e *Lifecycle) Devices(ctx context.Context, u UserRef) ([]DeviceView, error) {
	if err := ValidUserID(u.User); err != nil {
		return nil, err
	}
	a, err := e.store.Account(ctx, u)
	if err != nil {
		return nil, Internal(err)
	}
	if !a.Exists {
		return nil, ErrUserNotFound
	}
	pol, err := e.loadPolicy(ctx, u.Tenant)
	if err != nil {
		return nil, err
	}
	p := pol.Effective(a.Group)
	out := []DeviceView{}
	now := e.now()
	for _, d := range a.Devices {
		if exp := deviceExpiry(d, p); now.Before(exp) {
			out = append(out, DeviceView{ID: d.ID, FirstSeen: d.FirstSeen, LastSeen: d.LastSeen, ExpiresAt: exp, Browser: d.Browser, OS: d.OS, Country: d.Country})
		}
	}
	return out, nil
}

// ForgetDevices forgets one remembered device (deviceID = our id or the
// host's device id) or, with deviceID "", all of them. reason is recorded.
func (e *Lifecycle) ForgetDevices(ctx context.Context, u UserRef, deviceID string, reason message.Reason, actor Actor) (int, error) {
	if err := ValidUserID(u.User); err != nil {
		return 0, err
	}
	t, err := e.tenant(ctx, u.Tenant)
	if err != nil {
		return 0, err
	}
	var n int
	err = e.update(ctx, u, func(a *Account) ([]Event, []Job, error) {
		if !a.Exists {
			return nil, nil, ErrUserNotFound
		}
		before := len(a.Devices)
		dh := e.deviceHash(u, deviceID)
		a.Devices = slices.DeleteFunc(slices.Clone(a.Devices), func(d Device) bool {
			return deviceID == "" || d.ID == deviceID || d.DeviceHash == dh
		})
		n = before - len(a.Devices)
		if deviceID != "" && n == 0 {
			return nil, nil, ErrDeviceNotFound
		}
		ev := e.event(u.Tenant, u.User, message.EvDevicesForgotten, actor)
		ev.Details["reason"], ev.Details["count"] = string(reason), itoa(n)
		if n == 0 {
			// Nothing was remembered (or a retried report found it
			// forgotten already): audited, but nothing changed that the
			// user must hear of.
			return []Event{ev}, nil, nil
		}
		return []Event{ev}, e.userNotice(t, *a, &ev), nil
	})
	return n, err
}

// EraseUser removes everything stepup holds about a user; the audit log
// keeps only that an erasure happened.
func (e *Lifecycle) EraseUser(ctx context.Context, u UserRef, actor Actor) error {
	if err := ValidUserID(u.User); err != nil {
		return err
	}
	a, err := e.store.Account(ctx, u)
	if err != nil {
		return Internal(err)
	}
	st, err := e.store.LoadLogin(ctx, u, LoginQuery{Now: e.now(), Window: velocityWindow})
	if err != nil {
		return Internal(err)
	}
	if !a.Exists && st.UserLogins == 0 && st.GraceEpoch == "" && st.FailedPwUser == 0 && st.FailedChUser == 0 {
		// A user stepup never allowed (every login challenged or denied)
		// has neither, but his evaluated logins are kept for a verdict.
		kept, err := e.store.KeptLogins(ctx, u, e.now())
		if err != nil {
			return Internal(err)
		}
		if len(kept) == 0 {
			return ErrUserNotFound
		}
	}
	ev := e.event(u.Tenant, u.User, message.EvUserErased, actor)
	ev.IP, ev.Country, ev.Browser, ev.OS = "", "", "", ""
	// Every challenge still open dies with the user, so none can bring
	// the account back; the store refuses the erasure (a conflict) when a
	// challenge was opened after the listing, and it is listed again.
	err = retryConflicts(func() error {
		open, err := e.store.OpenChallenges(ctx, u, e.now())
		if err != nil {
			return Internal(err)
		}
		logins, err := e.store.KeptLogins(ctx, u, e.now())
		if err != nil {
			return Internal(err)
		}
		return AsErrorOrNil(e.store.Commit(ctx, u, Commit{Version: -1, Erase: true, EraseUser: e.userSubject(u), Events: []Event{ev}, Now: e.now(),
			CancelChallenges: open, EraseLogins: logins}))
	})
	if err != nil {
		return err
	}
	// The managers' alerts naming the user live in the tenant's own
	// stream, another slot: a second call.
	if err := e.store.EraseUserEvents(ctx, u.Tenant, u.User); err != nil {
		return Internal(err)
	}
	return nil
}

// LoginView is one of a user's recent logins as the console shows it.
type LoginView struct {
	ID       string    `json:"id"`
	At       time.Time `json:"at"`
	Decision Decision  `json:"decision"`
	Score    int       `json:"score"`
	Level    string    `json:"level,omitempty"`
	Signals  []string  `json:"signals"`
	Country  string    `json:"country,omitempty"`
	Browser  string    `json:"browser,omitempty"`
	OS       string    `json:"os,omitempty"`
	IP       string    `json:"ip,omitempty"` // masked
}

// RecentLogins returns up to n of the user's logins still kept for
// feedback (Options.FeedbackDays), newest first.
func (e *Lifecycle) RecentLogins(ctx context.Context, u UserRef, n int) ([]LoginView, error) {
	if err := ValidUserID(u.User); err != nil {
		return nil, err
	}
	recs, err := e.store.RecentLogins(ctx, u, e.now(), n)
	if err != nil {
		return nil, Internal(err)
	}
	out := make([]LoginView, 0, len(recs))
	for _, r := range recs {
		v := LoginView{ID: r.ID, At: r.At, Decision: r.Decision, Score: r.Score, Level: r.Level, Signals: r.Signals,
			Browser: r.Device.Browser, OS: r.Device.OS, Country: r.Device.Country, IP: r.IP}
		if v.Signals == nil {
			v.Signals = []string{}
		}
		out = append(out, v)
	}
	return out, nil
}

// factorViews lists a user's enrolled factors, masked.
func factorViews(a Account) []FactorView {
	fs := []FactorView{}
	if f := a.Factors.TOTP; f != nil {
		fs = append(fs, FactorView{Channel: ChannelTOTP, Destination: "authenticator app", AddedAt: f.AddedAt})
	}
	if f := a.Factors.SMS; f != nil {
		fs = append(fs, FactorView{Channel: ChannelSMS, Destination: f.Masked, AddedAt: f.AddedAt})
	}
	if f := a.Factors.Email; f != nil {
		fs = append(fs, FactorView{Channel: ChannelEmail, Destination: MaskEmail(a.Profile.Email), AddedAt: f.AddedAt})
	}
	if ks := a.Factors.Passkeys; len(ks) > 0 {
		dest := "1 passkey"
		if len(ks) > 1 {
			dest = itoa(len(ks)) + " passkeys"
		}
		fs = append(fs, FactorView{Channel: ChannelPasskey, Destination: dest, AddedAt: ks[0].AddedAt})
	}
	return fs
}

// RemovePasskey removes one of a user's passkeys (its id as listed by
// GetUser), with the same audit event and mail as any factor change. The
// last factor of a user whose policy requires 2FA cannot go. Nothing was
// proven for this call, so neither can the user's last factor of all:
// that is turning 2FA off, which asks for it (StartDisable).
func (e *Lifecycle) RemovePasskey(ctx context.Context, u UserRef, id string, actor Actor) error {
	_, err := e.removePasskey(ctx, u, id, nil, actor)
	return err
}

// removePasskey is RemovePasskey for a caller that may have proven the
// user: proven (nil: none) says whether that proof stands for the account
// as read (the hosted settings page's step-up), which lets the last
// factor go too, and is asked again of every state the removal commits
// on. It returns the account as changed.
func (e *Lifecycle) removePasskey(ctx context.Context, u UserRef, id string, proven func(Account) bool, actor Actor) (Account, error) {
	for try := 0; try < 5; try++ {
		t, p, a, err := e.start(ctx, e.store, u)
		if err != nil {
			return Account{}, err
		}
		if proven != nil && !proven(a) {
			return Account{}, ErrPromptNotVerified
		}
		i := slices.IndexFunc(a.Factors.Passkeys, func(k Passkey) bool { return k.ID == id })
		if i < 0 {
			return Account{}, ErrNoPasskey
		}
		next := a
		next.Factors.Passkeys = slices.Delete(slices.Clone(a.Factors.Passkeys), i, i+1)
		if !next.Factors.Any() {
			if p.Mode == ModeRequired {
				return Account{}, ErrPolicyRequires2FA
			}
			if proven == nil {
				return Account{}, ErrLastFactor
			}
			next.BackupCodes, next.Devices = nil, nil
		}
		err = e.commitChange(ctx, e.store, t, u, a, next, message.EvPasskeyRemoved, map[string]string{"passkey": a.Factors.Passkeys[i].Name}, actor)
		if errors.Is(err, ErrConflict) {
			continue
		}
		return next, err
	}
	return Account{}, ErrConflict
}
