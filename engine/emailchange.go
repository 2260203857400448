package engine

import (
	"context"

	"github.com/stepup-auth/stepup/message"
)

// ErrEmailRequired refuses to clear the address of a user with a factor.
var ErrEmailRequired = E(KindUnprocessable, "email_required",
	"a user with two-factor authentication keeps an e-mail address for security notices; give the new address instead of none").With("field", "email")

// startEmailChange prepares step one of an e-mail change on a (already
// holding the PUT's other fields): a challenge on the user's preferred
// factor, which replaces a change in flight. The new address waits, sealed,
// in the challenge.
func (e *Lifecycle) startEmailChange(ctx context.Context, t Tenant, p Policy, u UserRef, a *Account, addr string, actor Actor, c *Commit) (ChallengeView, error) {
	ch, ok := preferred(p, a.Factors)
	if !ok {
		return ChallengeView{}, ErrNoFactor
	}
	data := ChallengeData{Email: e.sealString(addr)}
	d, err := e.challengeOn(ctx, t, p, u, *a, ch, PurposeEmailOld, data, actor)
	if err != nil {
		return ChallengeView{}, err
	}
	if a.EmailChange != "" {
		c.CancelChallenges = append(c.CancelChallenges, a.EmailChange)
	}
	a.EmailChange = d.ch.ID
	c.NewChallenges = append(c.NewChallenges, d.ch)
	c.Jobs = append(c.Jobs, d.jobs...)
	return d.ch.view(e.now()), nil
}

// changeEmailNow switches the address of a user without a factor, where
// there is nothing to prove: the change is recorded and the old address is
// told. Every open challenge is cancelled with it.
func (e *Lifecycle) changeEmailNow(ctx context.Context, t Tenant, u UserRef, a *Account, addr string, actor Actor, c *Commit) error {
	old := a.Profile.Email
	a.Profile.Email, a.EmailChange = addr, ""
	open, err := e.openOthers(ctx, e.store, u, "")
	if err != nil {
		return err
	}
	c.CancelChallenges = append(c.CancelChallenges, open...)
	if old == "" {
		return nil // the first address: nothing changed that anyone must hear of
	}
	ev := e.event(u.Tenant, u.User, message.EvEmailChanged, actor)
	ev.Details["old_email"] = MaskEmail(old)
	if addr != "" {
		ev.Details["new_email"] = MaskEmail(addr)
	}
	c.Jobs = append(c.Jobs, e.emailChangeNotices(t, *a, old, &ev)...)
	c.Events = append(c.Events, ev)
	return nil
}

// emailChangeNotices mails ev to the old address (which may be the one
// an attacker replaced) and, as every notice, to the address now on file.
func (e *core) emailChangeNotices(t Tenant, a Account, old string, ev *Event) []Job {
	prev := a
	prev.Profile.Email = old
	jobs := e.userNotice(t, prev, ev)
	if a.Profile.Email != "" {
		jobs = append(jobs, e.userNotice(t, a, ev)...)
	}
	return jobs
}

// emailOld is step one of an e-mail change verified (a current factor
// proven): a code goes to the new address.
func (e *Challenges) emailOld(ctx context.Context, v *verification) error {
	addr, err := e.pendingEmail(v)
	if err != nil {
		return err
	}
	next, err := e.confirmNew(ctx, v, PurposeEmailNew, ChannelEmail, addr)
	if err != nil {
		return err
	}
	v.next.EmailChange = next
	return nil
}

// emailNew is step two verified (the new address proven): the address
// switches, remembered devices are forgotten, every other open challenge
// is cancelled, and the old address is told as well as the new one.
func (e *Challenges) emailNew(ctx context.Context, v *verification) error {
	addr, err := e.pendingEmail(v)
	if err != nil {
		return err
	}
	old := v.prev.Profile.Email
	v.next.Profile.Email, v.next.EmailChange, v.next.PhoneChange = addr, "", ""
	if err := e.cancelOthers(ctx, v); err != nil {
		return err
	}
	details := map[string]string{"old_email": MaskEmail(old), "new_email": MaskEmail(addr), "confirmed": "factor"}
	if v.next.Factors.Email != nil {
		details["email_factor"] = "yes"
	}
	e.event(v, message.EvEmailChanged, details)
	if old != "" {
		// The new address hears of it with the verification's other events.
		prev := v.next
		prev.Profile.Email = old
		v.commit.Jobs = append(v.commit.Jobs, e.userNotice(v.t, prev, &v.events[len(v.events)-1])...)
	}
	e.forgetDevices(v, message.ReasonEmailChanged)
	return nil
}

// pendingEmail opens the new address of the e-mail change v's challenge
// belongs to, which must still be the one in flight.
func (e *Challenges) pendingEmail(v *verification) (string, error) {
	if err := inFlight(v.prev.EmailChange, v.c.ID, v.prev.Factors.Any()); err != nil {
		return "", err
	}
	addr, err := e.openString(v.c.Data.Email)
	if err != nil || addr == "" {
		return "", Internal(err)
	}
	return addr, nil
}
