package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/stepup-auth/stepup/message"
)

// Challenge errors.
var (
	ErrTooManySends      = E(KindRateLimited, "too_many_sends", "this challenge was sent as often as it may be; start a new one")
	ErrNoFactor          = E(KindUnprocessable, "no_factor", "the user has no second factor for this")
	ErrChannelNotAllowed = E(KindUnprocessable, "channel_not_allowed", "the tenant's policy does not allow this channel")
)

// ChallengeStatusError is the error for acting on a challenge that is no
// longer pending.
func ChallengeStatusError(status string) *Error {
	switch status {
	case StatusExpired:
		return E(KindGone, "challenge_expired", "the challenge expired; start a new one")
	case StatusLocked:
		return E(KindLocked, "too_many_attempts", "too many wrong codes; the challenge is closed")
	case StatusVerified:
		return E(KindConflict, "challenge_used", "the challenge was already verified")
	case StatusCancelled:
		return E(KindGone, "challenge_cancelled", "the challenge was replaced or cancelled")
	case "missing":
		return ErrChallengeNotFound
	}
	return E(KindConflict, "challenge_closed", "the challenge is "+status)
}

// ErrResendTooSoon is returned when a resend comes before the cooldown.
func ErrResendTooSoon(wait time.Duration) *Error {
	return E(KindRateLimited, "rate_limited", "wait before sending again").With("retry_after", int((wait+time.Second-1)/time.Second))
}

// ChallengeView is the public view of a challenge.
type ChallengeView struct {
	ID           string                `json:"id"`
	Purpose      Purpose               `json:"purpose"`
	Channel      Channel               `json:"channel"`
	Destination  string                `json:"destination,omitempty"`
	Status       string                `json:"status"`
	ExpiresAt    time.Time             `json:"expires_at"`
	AttemptsLeft int                   `json:"attempts_left"`
	Delivery     message.DeliveryState `json:"delivery_status,omitempty"`
	DeliveryErr  string                `json:"delivery_error,omitempty"`
	Channels     []Channel             `json:"available_channels,omitempty"`
}

// view is the public view of c at now.
func (c Challenge) view(now time.Time) ChallengeView {
	v := ChallengeView{ID: c.ID, Purpose: c.Purpose, Channel: c.Channel, Destination: c.Destination,
		Status: c.Status, ExpiresAt: c.ExpiresAt, AttemptsLeft: max(c.MaxAttempts-c.Attempts, 0),
		Delivery: c.Delivery, DeliveryErr: c.DeliveryErr}
	if c.Status == StatusPending && !c.ExpiresAt.After(now) {
		v.Status = StatusExpired
	}
	return v
}

// GetChallenge returns a challenge of the tenant.
func (e *Engine) GetChallenge(ctx context.Context, tenant, id string) (ChallengeView, error) {
	c, ok, err := e.store.Challenge(ctx, tenant, id)
	if err != nil {
		return ChallengeView{}, Internal(err)
	}
	if !ok {
		return ChallengeView{}, ErrChallengeNotFound
	}
	return c.view(e.now()), nil
}

// newCode returns a random decimal code of the configured length.
func (e *Engine) newCode() string {
	max := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(e.opt.CodeLength)), nil)
	n, err := rand.Int(e.opt.Rand, max)
	if err != nil {
		panic(fmt.Sprintf("engine: random code: %v", err))
	}
	return fmt.Sprintf("%0*d", e.opt.CodeLength, n)
}

func (e *Engine) codeHash(id, code string) string {
	return hex.EncodeToString(e.codeMAC.Sum("challenge", id, code))
}

// draft is a challenge about to be created, with its code and message.
type draft struct {
	ch   Challenge
	code string
	jobs []Job
}

// newChallenge prepares a challenge on channel for u; to is the phone
// number or e-mail address the code goes to ("" for TOTP).
func (e *Engine) newChallenge(t Tenant, u UserRef, purpose Purpose, channel Channel, to string, data map[string]string) draft {
	now := e.now()
	c := Challenge{
		ID: e.newID("ch_", e.store.Placement(u)), Tenant: u.Tenant, User: u.User, Purpose: purpose, Channel: channel,
		Status: StatusPending, CreatedAt: now, ExpiresAt: now.Add(e.opt.CodeTTL), MaxAttempts: e.opt.CodeAttempts,
		Data: data,
	}
	if c.Data == nil {
		c.Data = map[string]string{}
	}
	d := draft{ch: c}
	switch channel {
	case ChannelSMS:
		d.code = e.newCode()
		d.ch.CodeHash = e.codeHash(c.ID, d.code)
		d.ch.Destination = MaskPhone(to)
		d.ch.Data["to"] = e.sealString(to)
		d.ch.Sends, d.ch.LastSentAt, d.ch.Delivery = 1, now, message.DeliveryQueued
		d.jobs = []Job{e.job(message.KindSMS, c.ID, message.SMS{To: to, Body: e.smsText(t, d.code)})}
	case ChannelEmail:
		d.code = e.newCode()
		d.ch.CodeHash = e.codeHash(c.ID, d.code)
		d.ch.Destination = MaskEmail(to)
		d.ch.Data["to"] = e.sealString(to)
		d.ch.Sends, d.ch.LastSentAt, d.ch.Delivery = 1, now, message.DeliveryQueued
		d.jobs = []Job{e.job(message.KindMail, c.ID, e.codeMail(t, to, d.code))}
	case ChannelTOTP:
		d.ch.Destination = "authenticator app"
	}
	return d
}

// smsText is the code message, with the Web OTP line when the public URL is
// known so browsers can fill the code in.
func (e *Engine) smsText(t Tenant, code string) string {
	s := fmt.Sprintf("%s is your %s verification code.", code, t.SenderName)
	if host := publicHost(e.opt.PublicURL); host != "" {
		s += fmt.Sprintf("\n\n@%s #%s", host, code)
	}
	return s
}

func (e *Engine) codeMail(t Tenant, to, code string) message.Mail {
	return message.Mail{
		To: []string{to}, FromName: t.SenderName,
		Subject: fmt.Sprintf("Your %s verification code", t.SenderName),
		Text: fmt.Sprintf("Your %s verification code is %s.\n\nIt is valid for %d minutes. If you did not ask for it, someone may know your password: change it.\n",
			t.SenderName, code, int(e.opt.CodeTTL/time.Minute)),
	}
}

func (e *Engine) sealString(s string) string { return hex.EncodeToString(e.piiBox.Seal([]byte(s))) }

func (e *Engine) openString(s string) (string, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return "", err
	}
	p, err := e.piiBox.Open(b)
	return string(p), err
}

// Resend sends a challenge a new code, within the cooldown and the send
// cap. Codes are stored only as keyed hashes, so the resent code replaces
// the earlier one; the challenge keeps its id, attempts and expiry.
func (e *Engine) Resend(ctx context.Context, tenant, id string) (ChallengeView, error) {
	c, ok, err := e.store.Challenge(ctx, tenant, id)
	if err != nil {
		return ChallengeView{}, Internal(err)
	}
	if !ok {
		return ChallengeView{}, ErrChallengeNotFound
	}
	if c.Channel == ChannelTOTP {
		return ChallengeView{}, E(KindUnprocessable, "nothing_to_send", "an authenticator-app challenge has no message to send")
	}
	u := UserRef{tenant, c.User}
	var p Policy // the user's policy, for an SMS
	if c.Channel == ChannelSMS {
		pol, err := e.loadPolicy(ctx, tenant)
		if err != nil {
			return ChallengeView{}, err
		}
		a, err := e.store.Account(ctx, u)
		if err != nil {
			return ChallengeView{}, Internal(err)
		}
		if p = pol.Effective(a.Group); p.SMSDisabled {
			return ChallengeView{}, ErrSMSDisabled
		}
	}
	// Refuse what the challenge itself refuses before anything counts
	// against the SMS limits (Rekey checks all of it again, atomically).
	now := e.now()
	switch {
	case c.Status != StatusPending:
		return ChallengeView{}, ChallengeStatusError(c.Status)
	case !c.ExpiresAt.After(now):
		return ChallengeView{}, ChallengeStatusError(StatusExpired)
	case c.Sends >= e.opt.MaxSends:
		return ChallengeView{}, ErrTooManySends
	case !c.LastSentAt.IsZero() && now.Sub(c.LastSentAt) < e.opt.ResendCooldown:
		return ChallengeView{}, ErrResendTooSoon(e.opt.ResendCooldown - now.Sub(c.LastSentAt))
	}
	t, err := e.Tenant(ctx, tenant)
	if err != nil {
		return ChallengeView{}, err
	}
	to, err := e.openString(c.Data["to"])
	if err != nil {
		return ChallengeView{}, Internal(err)
	}
	if c.Channel == ChannelSMS {
		if err := e.smsAllowed(ctx, t, p, u, to, Actor{}); err != nil {
			return ChallengeView{}, err
		}
	}
	code := e.newCode()
	var job Job
	if c.Channel == ChannelSMS {
		job = e.job(message.KindSMS, c.ID, message.SMS{To: to, Body: e.smsText(t, code)})
	} else {
		job = e.job(message.KindMail, c.ID, e.codeMail(t, to, code))
	}
	if err := e.store.Rekey(ctx, tenant, id, e.codeHash(id, code), e.now(), e.opt.ResendCooldown, e.opt.MaxSends, job); err != nil {
		return ChallengeView{}, AsError(err)
	}
	return e.GetChallenge(ctx, tenant, id)
}

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
}

// how a code matched.
type match int

const (
	noMatch match = iota
	codeMatch
	totpMatch
	backupMatch
)

// Verify checks a code and, when it is right, performs the challenge's
// action atomically. The attempt is counted before the code is compared.
func (e *Engine) Verify(ctx context.Context, tenant, id string, in VerifyInput) (VerifyResult, error) {
	code := normalizeCode(in.Code)
	if code == "" || len(code) > 32 {
		return VerifyResult{}, Invalid("code", "required, the digits of the code or a backup code")
	}
	c, err := e.store.AttemptChallenge(ctx, tenant, id, e.now())
	if err != nil {
		return VerifyResult{}, AsError(err)
	}
	u := UserRef{Tenant: tenant, User: c.User}
	t, err := e.Tenant(ctx, tenant)
	if err != nil {
		return VerifyResult{}, err
	}
	for try := 0; try < 5; try++ {
		a, err := e.store.Account(ctx, u)
		if err != nil {
			return VerifyResult{}, Internal(err)
		}
		how, step := e.match(c, a, code)
		if how == noMatch {
			return VerifyResult{}, e.wrongCode(ctx, u, c)
		}
		res, commit, err := e.act(ctx, t, u, c, a, how, step, in)
		if err != nil {
			return VerifyResult{}, err
		}
		commit.Challenge, commit.ChallengeStatus, commit.Now = c.ID, StatusVerified, e.now()
		err = e.store.Commit(ctx, u, commit)
		if errors.Is(err, ErrConflict) {
			continue // the account changed meanwhile: decide again on the new state
		}
		if err != nil {
			return VerifyResult{}, AsError(err)
		}
		e.afterVerify(ctx, u, c)
		e.countEvents(ctx, tenant, commit.Events)
		e.count(ctx, tenant, map[string]int64{"challenges_verified": 1})
		return VerifyResult{Verified: true, Purpose: c.Purpose, Result: res}, nil
	}
	return VerifyResult{}, ErrConflict
}

// wrongCode records a failed attempt; the last allowed one closes the
// challenge.
func (e *Engine) wrongCode(ctx context.Context, u UserRef, c Challenge) error {
	_ = e.store.RecordFailure(ctx, u, Failure{Kind: "challenge", At: e.now(), Window: time.Hour})
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
func (e *Engine) match(c Challenge, a Account, code string) (match, int64) {
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
			sealed = c.Data["secret"]
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

// backupAllowed: a backup code proves the account holder wherever the
// current factor is asked for, never where a new factor is being proven.
func backupAllowed(p Purpose) bool {
	switch p {
	case PurposeLogin, PurposePhoneOld, PurposeDisable, PurposeBackupCodes, PurposeStepUp:
		return true
	}
	return false
}

func normalizeCode(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.NewReplacer(" ", "", "-", "").Replace(s)
}

func (e *Engine) backupHash(u UserRef, code string) string {
	return hex.EncodeToString(e.codeMAC.Sum("backup", u.Tenant, u.User, normalizeCode(code)))
}

// newBackupCodes returns 10 codes (shown once) and their hashes.
func (e *Engine) newBackupCodes(u UserRef) ([]string, []string) {
	codes, hashes := make([]string, 10), make([]string, 10)
	for i := range codes {
		raw := e.randomToken(5) // 8 base32 characters, 40 bits
		codes[i] = raw[:4] + "-" + raw[4:8]
		hashes[i] = e.backupHash(u, codes[i])
	}
	return codes, hashes
}

// Switch moves a pending login challenge to another factor the user has:
// the old challenge is cancelled and a new one, for the same login, is
// created on channel.
func (e *Engine) Switch(ctx context.Context, tenant, id string, channel Channel, actor Actor) (ChallengeView, error) {
	c, ok, err := e.store.Challenge(ctx, tenant, id)
	if err != nil {
		return ChallengeView{}, Internal(err)
	}
	if !ok {
		return ChallengeView{}, ErrChallengeNotFound
	}
	if c.Purpose != PurposeLogin {
		return ChallengeView{}, E(KindUnprocessable, "not_switchable", "only a login challenge can move to another factor")
	}
	if c.Status != StatusPending || !c.ExpiresAt.After(e.now()) {
		return ChallengeView{}, ChallengeStatusError(map[bool]string{true: StatusExpired, false: c.Status}[c.Status == StatusPending])
	}
	u := UserRef{Tenant: tenant, User: c.User}
	t, p, a, err := e.start(ctx, u)
	if err != nil {
		return ChallengeView{}, err
	}
	if !a.Factors.Has(channel) {
		return ChallengeView{}, ErrNoFactor.With("channel", string(channel))
	}
	if channel == c.Channel {
		return c.view(e.now()), nil
	}
	data := map[string]string{"ip": c.Data["ip"], "ua": c.Data["ua"]}
	d, err := e.challengeOn(ctx, t, p, u, a, channel, PurposeLogin, data, actor)
	if err != nil {
		return ChallengeView{}, err
	}
	d.ch.LoginID = c.LoginID
	err = e.store.Commit(ctx, u, Commit{Version: -1, Challenge: c.ID, ChallengeStatus: StatusCancelled, Now: e.now(),
		NewChallenges: []Challenge{d.ch}, Jobs: d.jobs})
	if err != nil {
		return ChallengeView{}, AsError(err)
	}
	v := d.ch.view(e.now())
	v.Channels = a.Factors.Channels()
	return v, nil
}

// DeliveryReport records a provider's delivery report (its state already
// translated from the provider's words by delivery/twilio; "" for a status
// not tracked) on the challenge whose message it was.
func (e *Engine) DeliveryReport(ctx context.Context, providerID string, st message.DeliveryState, errorCode string) error {
	if providerID == "" || len(providerID) > 64 {
		return Invalid("MessageSid", "required")
	}
	if st == "" {
		return nil // statuses we do not track are acknowledged
	}
	if err := e.store.SetDelivery(ctx, providerID, st, errorCode); err != nil {
		return Internal(err)
	}
	return nil
}
