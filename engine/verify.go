package engine

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/stepup-auth/stepup/message"
)

// VerifyInput is a code submitted for a challenge.
type VerifyInput struct {
	Code           string
	RememberDevice bool
	Actor          Actor
}

// VerifyResult is the answer of a successful verification.
type VerifyResult struct {
	Verified bool           `json:"verified"`
	Purpose  Purpose        `json:"purpose"`
	Result   map[string]any `json:"result"`
	// state is the fingerprint of the account the verification left, for
	// a settings page to know what its proof stands for.
	state string
}

// how a code matched.
type match int

const (
	noMatch match = iota
	codeMatch
	totpMatch
	backupMatch
	passkeyMatch
)

// Verify checks a code and, when it is right, performs the challenge's
// action (its purpose's handler, purpose.go) atomically with the
// challenge's verification. The attempt is counted before the code is
// compared; what the handlers need beyond the account is read once.
func (e *Challenges) Verify(ctx context.Context, tenant, id string, in VerifyInput) (VerifyResult, error) {
	code := normalizeCode(in.Code)
	if code == "" || len(code) > 32 {
		return VerifyResult{}, Invalid("code", "required, the digits of the code or a backup code")
	}
	return e.verify(ctx, tenant, id, in, func(c Challenge, a Account) (proof, error) {
		how, step := e.match(c, a, code)
		return proof{how: how, step: step, code: code}, nil
	})
}

// proof is what proved the account holder on one try of a verification.
type proof struct {
	how     match
	step    int64  // the TOTP step that matched
	code    string // the code typed (a backup code is spent)
	passkey *Passkey
	index   int // of the passkey among the user's
}

// verify is Verify with the proof left to prove: a code's match, or a
// passkey's assertion (VerifyPasskey).
func (e *Challenges) verify(ctx context.Context, tenant, id string, in VerifyInput, prove func(Challenge, Account) (proof, error)) (VerifyResult, error) {
	c, err := e.store.AttemptChallenge(ctx, tenant, id, e.now(), e.attemptBudget())
	if err != nil {
		return VerifyResult{}, e.attemptRefused(ctx, tenant, err)
	}
	pur, ok := purposes[c.Purpose]
	if !ok {
		return VerifyResult{}, Internal(errors.New("engine: unknown purpose " + string(c.Purpose)))
	}
	base, pol, err := e.prepare(ctx, c, in)
	if err != nil {
		return VerifyResult{}, err
	}
	for try := 0; try < 5; try++ {
		a, err := e.store.Account(ctx, base.u)
		if err != nil {
			return VerifyResult{}, Internal(err)
		}
		pr, err := prove(c, a)
		if err != nil {
			return VerifyResult{}, err
		}
		if pr.how == noMatch {
			return VerifyResult{}, e.wrongCode(ctx, base.u, c)
		}
		if e.stale(c, a) {
			return VerifyResult{}, e.closeStale(ctx, base.u, c)
		}
		v := base.on(a, pol.Effective(a.Group), pr.how, pr.step, e.now())
		e.spend(v, pr)
		if err := pur.act(e, ctx, v); err != nil {
			return VerifyResult{}, err
		}
		err = e.store.Commit(ctx, v.u, e.seal(v))
		if errors.Is(err, ErrConflict) {
			continue // the account changed meanwhile: decide again on the new state
		}
		if err != nil {
			return VerifyResult{}, AsError(err)
		}
		e.afterVerify(ctx, v)
		return VerifyResult{Verified: true, Purpose: c.Purpose, Result: v.result, state: e.fingerprint(v.next)}, nil
	}
	return VerifyResult{}, ErrConflict
}

// prepare reads, once for every try of a verification, what does not
// change with the account: the tenant, its policy, and the login a login
// challenge was for.
func (e *Challenges) prepare(ctx context.Context, c Challenge, in VerifyInput) (verification, *compiled, error) {
	v := verification{u: UserRef{Tenant: c.Tenant, User: c.User}, c: c, in: in,
		actor: Actor{Kind: message.ActorUser, IP: c.Data.IP, UserAgent: c.Data.UA}}
	if in.Actor.IP != "" {
		v.actor.IP, v.actor.UserAgent = in.Actor.IP, in.Actor.UserAgent
	}
	var err error
	if v.t, err = e.tenant(ctx, c.Tenant); err != nil {
		return v, nil, err
	}
	pol, err := e.loadPolicy(ctx, c.Tenant)
	if err != nil {
		return v, nil, err
	}
	if c.Purpose == PurposeLogin && c.LoginID != "" {
		rec, ok, err := e.store.Login(ctx, c.LoginID)
		if err != nil {
			return v, nil, Internal(err)
		}
		if ok {
			v.login = &rec
		}
	}
	return v, pol, nil
}

// on is a fresh try of the verification on account a.
func (v verification) on(a Account, p Policy, how match, step int64, now time.Time) *verification {
	v.p, v.prev, v.how, v.step, v.now = p, a, how, step, now
	v.next = a
	v.next.BackupCodes = slices.Clone(a.BackupCodes)
	v.next.Devices = slices.Clone(a.Devices)
	v.next.UpdatedAt = now
	if !a.Exists {
		v.next.CreatedAt = now
	}
	v.commit = Commit{Version: a.Version}
	v.result = map[string]any{}
	v.events = nil
	return &v
}

// spend uses up what proved the code: a backup code is gone, a TOTP step
// may not be used again.
func (e *Challenges) spend(v *verification, pr proof) {
	switch v.how {
	case passkeyMatch:
		// The passkey's new signature counter (and last use) is kept.
		v.next.Factors.Passkeys = slices.Clone(v.next.Factors.Passkeys)
		v.next.Factors.Passkeys[pr.index] = *pr.passkey
		v.result["method"] = string(ChannelPasskey)
	case backupMatch:
		h := e.backupHash(v.u, pr.code)
		v.next.BackupCodes = slices.DeleteFunc(v.next.BackupCodes, func(b string) bool { return b == h })
		d := map[string]string{"remaining": itoa(len(v.next.BackupCodes))}
		if v.c.Purpose != PurposeLogin {
			d["used_for"] = "change" // the mail must not call it a sign-in
		}
		e.event(v, message.EvBackupUsed, d)
		v.result["backup_codes_left"] = len(v.next.BackupCodes)
	case totpMatch:
		if v.c.Purpose != PurposeEnrollTOTP && v.next.Factors.TOTP != nil {
			f := *v.next.Factors.TOTP
			f.LastStep = v.step
			v.next.Factors.TOTP = &f
		}
	}
}

// seal completes v's commit: the account after the action, the user's
// mails about its events, the challenge's own verification and, for a
// login, teaching the user's history that login.
func (e *Challenges) seal(v *verification) Commit {
	v.next.Exists = true
	cm := v.commit
	cm.Account = &v.next
	for i := range v.events {
		cm.Jobs = append(cm.Jobs, e.userNotice(v.t, v.next, &v.events[i])...)
	}
	cm.Events = v.events
	cm.Challenge, cm.ChallengeStatus, cm.Now = v.c.ID, StatusVerified, e.now()
	if v.login != nil {
		// The login is learned in the same atomic write (once per login).
		cm.Learn, cm.LearnOpt = v.login, e.learnOptions()
	}
	return cm
}

// afterVerify does what follows a verification outside its atomic commit:
// the right code's attempt is given back to the user's budget, and the
// day's tallies count it.
func (e *Challenges) afterVerify(ctx context.Context, v *verification) {
	if err := e.store.ReleaseAttempt(ctx, v.u, v.c.ID, v.c.Attempts); err != nil {
		e.log.Warn("right code's attempt not released", "challenge", v.c.ID, "err", err)
	}
	e.countEvents(ctx, v.u.Tenant, v.events)
	e.count(ctx, v.u.Tenant, map[string]int64{"challenges_verified": 1})
}

// attemptBudget is the per-user cap on code attempts.
func (e *Challenges) attemptBudget() AttemptBudget {
	return AttemptBudget{Max: e.opt.Limits.WrongCodesPerUser, Window: time.Hour}
}

// attemptRefused answers a refused attempt; a spent budget alerts the
// tenant's managers (once per hour).
func (e *Challenges) attemptRefused(ctx context.Context, tenant string, err error) error {
	ee := AsError(err)
	if ee.Kind != KindRateLimited {
		return ee
	}
	t, terr := e.tenant(ctx, tenant)
	if terr != nil {
		return ee
	}
	if pol, perr := e.loadPolicy(ctx, tenant); perr == nil {
		e.alert(ctx, t, pol.Policy, message.EvAlertAttemptLimit, map[string]string{"limit": "wrong_codes_per_user",
			"max": strconv.Itoa(e.opt.Limits.WrongCodesPerUser), "window": "the last hour"})
	}
	return ee
}

// wrongCode records a failed attempt; the last allowed one closes the
// challenge.
func (e *Challenges) wrongCode(ctx context.Context, u UserRef, c Challenge) error {
	_ = e.store.RecordFailure(ctx, u, Failure{Kind: FailedChallenge, At: e.now(), Window: time.Hour})
	e.count(ctx, u.Tenant, map[string]int64{"challenges_failed": 1})
	left := c.MaxAttempts - c.Attempts
	if left <= 0 {
		err := e.store.Commit(ctx, u, Commit{Version: -1, Challenge: c.ID, ChallengeStatus: StatusLocked, Now: e.now()})
		if err != nil && !isStatusErr(err) {
			return Internal(err)
		}
		return ChallengeStatusError(StatusLocked)
	}
	return E(KindUnprocessable, "invalid_code", "the code is wrong").With("attempts_left", left)
}

func isStatusErr(err error) bool {
	var ee *Error
	return errors.As(err, &ee) && ee.Kind != KindInternal
}

// match compares a submitted code with the challenge's code, the TOTP
// secret and the backup codes, in constant time where it compares secrets.
func (e *Challenges) match(c Challenge, a Account, code string) (match, int64) {
	switch c.Channel {
	case ChannelSMS, ChannelEmail:
		if c.CodeHash != "" && constantEqual(e.codeHash(c.ID, code), c.CodeHash) {
			return codeMatch, 0
		}
	case ChannelTOTP:
		// An enrolment proves the new secret it carries; every other
		// purpose (a login, a step-up before a reset) the enrolled one.
		var sealed string
		var last int64
		switch {
		case c.Purpose == PurposeEnrollTOTP:
			sealed = c.Data.Secret
		case a.Factors.TOTP != nil:
			sealed = hex.EncodeToString(a.Factors.TOTP.Sealed)
			last = a.Factors.TOTP.LastStep
		}
		if sealed != "" {
			if step, ok := e.checkTOTP(sealed, code, last); ok {
				return totpMatch, step
			}
		}
	}
	if backupAllowed(c.Purpose) {
		h := e.backupHash(UserRef{c.Tenant, c.User}, code)
		for _, b := range a.BackupCodes {
			if constantEqual(b, h) {
				return backupMatch, 0
			}
		}
	}
	return noMatch, 0
}
