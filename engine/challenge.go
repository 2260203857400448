package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/stepup-auth/stepup/message"
)

// Challenges verifies codes and carries out what each challenge was for;
// it also resends codes, moves a login challenge to another factor and
// records delivery reports.
type Challenges struct {
	*core
	store challengeStore
}

// challengeStore is what Challenges reads and changes.
type challengeStore interface {
	accountStore
	// Challenge reads a challenge without counting an attempt.
	Challenge(ctx context.Context, tenant, id string) (Challenge, bool, error)
	// AttemptChallenge counts one verification attempt and returns the
	// challenge as it is after counting. It returns ErrChallengeNotFound for
	// an unknown id or another tenant's challenge, and ErrAttemptBudget,
	// counting nothing, when the challenge's user spent the budget b.
	AttemptChallenge(ctx context.Context, tenant, id string, now time.Time, b AttemptBudget) (Challenge, error)
	// ReleaseAttempt gives attempt number `attempt` of challenge id back to
	// the user's budget (its code was right: the budget counts wrong ones).
	ReleaseAttempt(ctx context.Context, u UserRef, id string, attempt int) error
	// Rekey gives a pending challenge a new code hash, counts a send and
	// queues its message, within the cooldown and the send cap.
	Rekey(ctx context.Context, tenant, id, codeHash string, now time.Time, cooldown time.Duration, maxSends int, job Job) error
	// Login returns a login record kept for its challenge.
	Login(ctx context.Context, id string) (LoginRecord, bool, error)
	// Learn teaches the history a verified login (idempotent per login id).
	Learn(ctx context.Context, u UserRef, rec LoginRecord, opt LearnOptions) error
	RecordFailure(ctx context.Context, u UserRef, f Failure) error
	openLister
	// SetDelivery records a provider's delivery report on the challenge
	// whose message had that provider id (no-op if none).
	SetDelivery(ctx context.Context, providerID string, status message.DeliveryState, errorCode string) error
}

// Challenge errors.
var (
	ErrTooManySends      = E(KindRateLimited, "too_many_sends", "this challenge was sent as often as it may be; start a new one")
	ErrNoFactor          = E(KindUnprocessable, "no_factor", "the user has no second factor for this")
	ErrChannelNotAllowed = E(KindUnprocessable, "channel_not_allowed", "the tenant's policy does not allow this channel")
)

// ChallengeStatusError is the error for acting on a challenge that is no
// longer pending.
func ChallengeStatusError(status Status) *Error {
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
	return E(KindConflict, "challenge_closed", "the challenge is "+string(status))
}

// ErrAttemptBudget is returned, without the code being compared, when the
// challenge's user had too many wrong codes in the last hour.
func ErrAttemptBudget(wait time.Duration) *Error {
	return E(KindRateLimited, "too_many_attempts", "too many wrong codes for this user; wait before trying again").
		With("retry_after", max(int((wait+time.Second-1)/time.Second), 1))
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
	Status       Status                `json:"status"`
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
	v.Status = c.viewStatus(now)
	return v
}

// viewStatus is c's status as a caller sees it at now: a pending challenge
// past its expiry is expired, whether or not Redis has swept it yet.
func (c Challenge) viewStatus(now time.Time) Status {
	if c.Status == StatusPending && !c.ExpiresAt.After(now) {
		return StatusExpired
	}
	return c.Status
}

// GetChallenge returns a challenge of the tenant.
func (e *Challenges) GetChallenge(ctx context.Context, tenant, id string) (ChallengeView, error) {
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
func (e *core) newCode() string {
	max := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(e.opt.CodeLength)), nil)
	n, err := rand.Int(e.opt.Rand, max)
	if err != nil {
		panic(fmt.Sprintf("engine: random code: %v", err))
	}
	return fmt.Sprintf("%0*d", e.opt.CodeLength, n)
}

func (e *core) codeHash(id, code string) string {
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
func (e *core) newChallenge(t Tenant, u UserRef, purpose Purpose, channel Channel, to string, data map[string]string) draft {
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
func (e *core) smsText(t Tenant, code string) string {
	s := fmt.Sprintf("%s is your %s verification code.", code, t.SenderName)
	if host := publicHost(e.opt.PublicURL); host != "" {
		s += fmt.Sprintf("\n\n@%s #%s", host, code)
	}
	return s
}

func (e *core) codeMail(t Tenant, to, code string) message.Mail {
	return message.Mail{
		To: []string{to}, FromName: t.SenderName,
		Subject: fmt.Sprintf("Your %s verification code", t.SenderName),
		Text: fmt.Sprintf("Your %s verification code is %s.\n\nIt is valid for %d minutes. If you did not ask for it, someone may know your password: change it.\n",
			t.SenderName, code, int(e.opt.CodeTTL/time.Minute)),
	}
}

func (e *core) sealString(s string) string { return hex.EncodeToString(e.piiBox.Seal([]byte(s))) }

func (e *core) openString(s string) (string, error) {
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
func (e *Challenges) Resend(ctx context.Context, tenant, id string) (ChallengeView, error) {
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
	pol, err := e.loadPolicy(ctx, tenant)
	if err != nil {
		return ChallengeView{}, err
	}
	a, err := e.store.Account(ctx, u)
	if err != nil {
		return ChallengeView{}, Internal(err)
	}
	p := pol.Effective(a.Group) // the user's policy, for the send limits
	if c.Channel == ChannelSMS && p.SMSDisabled {
		return ChallengeView{}, ErrSMSDisabled
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
	t, err := e.tenant(ctx, tenant)
	if err != nil {
		return ChallengeView{}, err
	}
	to, err := e.openString(c.Data["to"])
	if err != nil {
		return ChallengeView{}, Internal(err)
	}
	// The per-IP limit counts against the client that started the
	// challenge, whoever asks for the resend.
	if err := e.sendAllowed(ctx, t, p, u, c.Channel, to, Actor{IP: c.Data["ip"]}); err != nil {
		return ChallengeView{}, err
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
func (e *Challenges) Verify(ctx context.Context, tenant, id string, in VerifyInput) (VerifyResult, error) {
	code := normalizeCode(in.Code)
	if code == "" || len(code) > 32 {
		return VerifyResult{}, Invalid("code", "required, the digits of the code or a backup code")
	}
	c, err := e.store.AttemptChallenge(ctx, tenant, id, e.now(), e.attemptBudget())
	if err != nil {
		return VerifyResult{}, e.attemptRefused(ctx, tenant, err)
	}
	u := UserRef{Tenant: tenant, User: c.User}
	t, err := e.tenant(ctx, tenant)
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
		if e.stale(c, a) {
			return VerifyResult{}, e.closeStale(ctx, u, c)
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
		if err := e.store.ReleaseAttempt(ctx, u, c.ID, c.Attempts); err != nil {
			e.log.Warn("right code's attempt not released", "challenge", c.ID, "err", err)
		}
		e.countEvents(ctx, tenant, commit.Events)
		e.count(ctx, tenant, map[string]int64{"challenges_verified": 1})
		return VerifyResult{Verified: true, Purpose: c.Purpose, Result: res}, nil
	}
	return VerifyResult{}, ErrConflict
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
	case PurposeLogin, PurposePhoneOld, PurposeEmailOld, PurposeDisable, PurposeBackupCodes, PurposeStepUp:
		return true
	}
	return false
}

func normalizeCode(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	return strings.NewReplacer(" ", "", "-", "").Replace(s)
}

func (e *core) backupHash(u UserRef, code string) string {
	return hex.EncodeToString(e.codeMAC.Sum("backup", u.Tenant, u.User, normalizeCode(code)))
}

// newBackupCodes returns 10 codes (shown once) and their hashes.
func (e *core) newBackupCodes(u UserRef) ([]string, []string) {
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
func (e *Challenges) Switch(ctx context.Context, tenant, id string, channel Channel, actor Actor) (ChallengeView, error) {
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
		return ChallengeView{}, ChallengeStatusError(c.viewStatus(e.now()))
	}
	u := UserRef{Tenant: tenant, User: c.User}
	t, p, a, err := e.start(ctx, e.store, u)
	if err != nil {
		return ChallengeView{}, err
	}
	if !a.Factors.Has(channel) {
		return ChallengeView{}, ErrNoFactor.With("channel", string(channel))
	}
	if channel == c.Channel {
		return c.view(e.now()), nil
	}
	if c.Attempts >= c.MaxAttempts {
		return ChallengeView{}, ChallengeStatusError(StatusLocked)
	}
	// The send limits count against the client that started the login.
	if c.Data["ip"] != "" {
		actor.IP = c.Data["ip"]
	}
	data := map[string]string{"ip": c.Data["ip"], "ua": c.Data["ua"]}
	d, err := e.challengeOn(ctx, t, p, u, a, channel, PurposeLogin, data, actor)
	if err != nil {
		return ChallengeView{}, err
	}
	d.ch.LoginID = c.LoginID
	// The new challenge inherits the attempts used: switching never
	// refills them.
	d.ch.Attempts = c.Attempts
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
func (e *Challenges) DeliveryReport(ctx context.Context, providerID string, st message.DeliveryState, errorCode string) error {
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
