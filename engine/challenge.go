package engine

import (
	"context"
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
	case StatusMissing:
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

// load reads a challenge of the tenant, or answers challenge_not_found.
func (e *Challenges) load(ctx context.Context, tenant, id string) (Challenge, error) {
	c, ok, err := e.store.Challenge(ctx, tenant, id)
	if err != nil {
		return Challenge{}, Internal(err)
	}
	if !ok {
		return Challenge{}, ErrChallengeNotFound
	}
	return c, nil
}

// GetChallenge returns a challenge of the tenant.
func (e *Challenges) GetChallenge(ctx context.Context, tenant, id string) (ChallengeView, error) {
	c, err := e.load(ctx, tenant, id)
	if err != nil {
		return ChallengeView{}, err
	}
	return c.view(e.now()), nil
}

// Resend sends a challenge a new code, within the cooldown and the send
// cap. Codes are stored only as keyed hashes, so the resent code replaces
// the earlier one; the challenge keeps its id, attempts and expiry.
func (e *Challenges) Resend(ctx context.Context, tenant, id string) (ChallengeView, error) {
	c, err := e.load(ctx, tenant, id)
	if err != nil {
		return ChallengeView{}, err
	}
	if c.Channel == ChannelTOTP || c.Channel == ChannelPasskey {
		return ChallengeView{}, E(KindUnprocessable, "nothing_to_send", "an authenticator-app or passkey challenge has no message to send")
	}
	u := UserRef{tenant, c.User}
	t, p, _, err := e.start(ctx, e.store, u) // the user's policy, for the send limits
	if err != nil {
		return ChallengeView{}, err
	}
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
	to, err := e.openString(c.Data.To)
	if err != nil {
		return ChallengeView{}, Internal(err)
	}
	// The per-IP limit counts against the client that started the
	// challenge, whoever asks for the resend.
	if err := e.sendAllowed(ctx, t, p, u, c.Channel, to, Actor{IP: c.Data.IP}); err != nil {
		return ChallengeView{}, err
	}
	code := e.newCode()
	job := e.codeJob(t, c.Channel, c.Purpose, c.ID, to, code)
	if err := e.store.Rekey(ctx, tenant, id, e.codeHash(id, code), e.now(), e.opt.ResendCooldown, e.opt.MaxSends, job); err != nil {
		return ChallengeView{}, AsError(err)
	}
	return e.GetChallenge(ctx, tenant, id)
}

// Switch moves a pending login challenge to another factor the user has:
// the old challenge is cancelled and a new one, for the same login, is
// created on channel.
func (e *Challenges) Switch(ctx context.Context, tenant, id string, channel Channel, actor Actor) (ChallengeView, error) {
	c, err := e.load(ctx, tenant, id)
	if err != nil {
		return ChallengeView{}, err
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
	if c.Data.IP != "" {
		actor.IP = c.Data.IP
	}
	d, err := e.challengeOn(ctx, t, p, u, a, channel, PurposeLogin, c.Data.client(), actor)
	if err != nil {
		return ChallengeView{}, err
	}
	d.ch.LoginID = c.LoginID
	// The new challenge inherits the attempts used: switching never
	// refills them.
	d.ch.Attempts = c.Attempts
	return e.replaceChallenge(ctx, e.store, u, c.ID, d, a)
}

// replaceChallenge cancels the pending challenge old and creates d in its
// place, its code queued, in one commit; it returns d's view, offering
// a's factors.
func (e *core) replaceChallenge(ctx context.Context, st committer, u UserRef, old string, d draft, a Account) (ChallengeView, error) {
	now := e.now()
	err := st.Commit(ctx, u, Commit{Version: -1, Challenge: old, ChallengeStatus: StatusCancelled, Now: now,
		NewChallenges: []Challenge{d.ch}, Jobs: d.jobs})
	if err != nil {
		return ChallengeView{}, AsError(err)
	}
	v := d.ch.view(now)
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
