package engine

import (
	"context"
	"encoding/hex"
	"slices"
	"strconv"
	"time"
)

// ErrChallengeStale is the answer for verifying a challenge whose user's
// factors or security e-mail changed after it was made: what it would do
// was decided on a state that is gone, so it is closed instead.
var ErrChallengeStale = E(KindConflict, "challenge_stale",
	"the user's two-factor settings changed since this challenge was made; it is closed, start a new one")

// fingerprint is a keyed hash of what a challenge's action depends on: the
// enrolled factors (each one's identity, not its counters) and the address
// security notices go to. Logins, remembered devices, backup-code use and a
// TOTP's last step leave it as it is, so everyday activity never makes an
// open challenge stale; an enrolment, a reset, a phone or e-mail change, a
// disabling does.
func (e *core) fingerprint(a Account) string {
	parts := []string{"email=" + a.Profile.Email}
	if f := a.Factors.SMS; f != nil {
		parts = append(parts, "sms="+hex.EncodeToString(f.Sealed))
	}
	if f := a.Factors.TOTP; f != nil {
		parts = append(parts, "totp="+hex.EncodeToString(f.Sealed))
	}
	if f := a.Factors.Email; f != nil {
		parts = append(parts, "email_factor="+strconv.FormatInt(f.AddedAt.UnixNano(), 10))
	}
	for _, k := range a.Factors.Passkeys {
		parts = append(parts, "passkey="+k.ID)
	}
	return hex.EncodeToString(e.codeMAC.Sum(append([]string{"state"}, parts...)...)[:16])
}

// challengeFor prepares a challenge like newChallenge, stamped with the
// fingerprint of the account it is made for.
func (e *core) challengeFor(t Tenant, u UserRef, a Account, purpose Purpose, channel Channel, to string, data ChallengeData) draft {
	data.State = e.fingerprint(a)
	return e.newChallenge(t, u, purpose, channel, to, data)
}

// stale reports whether c was made for another state of the account than
// a. A challenge without a fingerprint (made before they were recorded)
// is judged by its purpose's own checks alone.
func (e *core) stale(c Challenge, a Account) bool {
	return c.Data.State != "" && !constantEqual(c.Data.State, e.fingerprint(a))
}

// closeStale cancels a stale challenge and returns the error to answer.
func (e *Challenges) closeStale(ctx context.Context, u UserRef, c Challenge) error {
	err := e.store.Commit(ctx, u, Commit{Version: -1, Challenge: c.ID, ChallengeStatus: StatusCancelled, Now: e.now()})
	if err != nil && !isStatusErr(err) {
		return Internal(err)
	}
	return ErrChallengeStale
}

// openLister lists a user's open challenges.
type openLister interface {
	// OpenChallenges lists the ids of a user's open challenges (pending, or
	// expired less than a day ago: closing those too is harmless).
	OpenChallenges(ctx context.Context, u UserRef, now time.Time) ([]string, error)
}

// openOthers lists the user's open challenges other than keep, for a
// change of the factors or the security e-mail to cancel in its commit.
func (e *core) openOthers(ctx context.Context, st openLister, u UserRef, keep string) ([]string, error) {
	open, err := st.OpenChallenges(ctx, u, e.now())
	if err != nil {
		return nil, Internal(err)
	}
	return slices.DeleteFunc(open, func(id string) bool { return id == keep }), nil
}
