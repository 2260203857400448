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
func (e *Lifecycle) startEmailChange(ctx context.Context, t Tenant, p Policy, u UserRef, a *Account, addr string, c *Commit) (ChallengeView, error) {
	ch, ok := preferred(p, a.Factors)
	if !ok {
		return ChallengeView{}, ErrNoFactor
	}
	data := map[string]string{"email": e.sealString(addr)}
	d, err := e.challengeOn(ctx, t, p, u, *a, ch, PurposeEmailOld, data, Actor{Kind: message.ActorUser})
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
func (e *Lifecycle) changeEmailNow(ctx context.Context, t Tenant, u UserRef, a *Account, addr string, c *Commit) error {
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
	ev := e.event(u.Tenant, u.User, message.EvEmailChanged, Actor{Kind: message.ActorUser})
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

// actEmailChange is what verifying a step of an e-mail change does: step
// one (a current factor proven) sends a code to the new address; step two
// (that code) switches the address, forgets remembered devices and cancels
// every other open challenge. It fills na and cm and returns the events
// (their notices are queued here, to both addresses) and the result.
func (e *Challenges) actEmailChange(ctx context.Context, t Tenant, p Policy, u UserRef, c Challenge, a Account, na *Account, cm *Commit, actor Actor) ([]Event, map[string]any, error) {
	if a.EmailChange != c.ID || !a.Factors.Any() {
		return nil, nil, ChallengeStatusError(StatusCancelled)
	}
	addr, err := e.openString(c.Data["email"])
	if err != nil || addr == "" {
		return nil, nil, Internal(err)
	}
	if c.Purpose == PurposeEmailOld {
		if err := e.emailAllowed(ctx, t, p, u, addr, actor); err != nil {
			return nil, nil, err
		}
		data := map[string]string{"email": c.Data["email"], "ip": c.Data["ip"], "ua": c.Data["ua"]}
		next := e.challengeFor(t, u, a, PurposeEmailNew, ChannelEmail, addr, data)
		na.EmailChange = next.ch.ID
		cm.NewChallenges = append(cm.NewChallenges, next.ch)
		cm.Jobs = append(cm.Jobs, next.jobs...)
		return nil, map[string]any{"next_challenge": next.ch.view(e.now())}, nil
	}
	old := a.Profile.Email
	na.Profile.Email, na.EmailChange, na.PhoneChange = addr, "", ""
	if cm.CancelChallenges, err = e.openOthers(ctx, e.store, u, c.ID); err != nil {
		return nil, nil, err
	}
	ev := e.event(u.Tenant, u.User, message.EvEmailChanged, actor)
	ev.Details["old_email"], ev.Details["new_email"], ev.Details["confirmed"] = MaskEmail(old), MaskEmail(addr), "factor"
	if na.Factors.Email != nil {
		ev.Details["email_factor"] = "yes"
	}
	var events []Event
	if old != "" {
		// The new address hears of it with the other events of act.
		prev := *na
		prev.Profile.Email = old
		cm.Jobs = append(cm.Jobs, e.userNotice(t, prev, &ev)...)
	}
	events = append(events, ev)
	if len(na.Devices) > 0 {
		na.Devices = nil
		fe := e.event(u.Tenant, u.User, message.EvDevicesForgotten, actor)
		fe.Details["reason"] = string(message.ReasonEmailChanged)
		events = append(events, fe)
	}
	return events, map[string]any{}, nil
}
