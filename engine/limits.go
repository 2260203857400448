package engine

import (
	"context"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/stepup-auth/stepup/message"
)

// smsLimits returns the SMS limits a code sent to `to` takes, after
// checking what refuses it before any limit: the kill switch and the
// destination country.
func (e *core) smsLimits(ctx context.Context, t Tenant, p Policy, u UserRef, to string, actor Actor) ([]Limit, error) {
	if p.SMSDisabled {
		e.alert(ctx, t, p, message.EvAlertKillSwitch, map[string]string{"limit": "kill_switch"})
		return nil, ErrSMSDisabled
	}
	_, region, err := ParsePhone(to)
	if err != nil {
		return nil, err
	}
	if err := smsCountryAllowed(p, region); err != nil {
		return nil, err
	}
	num := e.subject(u.Tenant, "phone", to)
	limits := []Limit{
		{Scope: "sms:u", Tenant: u.Tenant, Subject: e.userSubject(u), PerHour: e.opt.Limits.SMSPerUser, Name: "user"},
		{Scope: "sms:n", Tenant: u.Tenant, Subject: num, PerHour: e.opt.Limits.SMSPerNumber, Name: "number"},
		{Scope: "sms:c", Tenant: u.Tenant, Subject: region, PerHour: e.opt.Limits.SMSPerCountry, Name: "country", Shared: true},
		{Scope: "sms:t", Tenant: u.Tenant, PerHour: e.smsCap(p), Name: "tenant", Shared: true},
	}
	return append(limits, e.ipLimit(u, actor)...), nil
}

// emailLimits returns the e-mail code limits a code mailed to `to` takes:
// per user, per address (across users) and per client IP.
func (e *core) emailLimits(u UserRef, to string, actor Actor) []Limit {
	addr := e.subject(u.Tenant, "email", strings.ToLower(to))
	limits := []Limit{
		{Scope: "mail:u", Tenant: u.Tenant, Subject: e.userSubject(u), PerHour: e.opt.Limits.EmailPerUser, Name: "user"},
		{Scope: "mail:a", Tenant: u.Tenant, Subject: addr, PerHour: e.opt.Limits.EmailPerAddress, Name: "address"},
	}
	return append(limits, e.ipLimit(u, actor)...)
}

// subject names a value of a kind (a user, a phone number, an address, a
// client IP) of the tenant in limit keys and failure windows: a short
// keyed hash, never the value.
func (e *core) subject(tenant, kind, value string) string {
	return hex.EncodeToString(e.featMAC.Sum(tenant, kind, value)[:8])
}

// userSubject names a user in the limits' keys (a keyed hash, never the id).
func (e *core) userSubject(u UserRef) string { return e.subject(u.Tenant, "user", u.User) }

// ipLimit is the per-client-IP limit on starting challenges (an IPv6
// client's /64), when the client's IP is known.
func (e *core) ipLimit(u UserRef, actor Actor) []Limit {
	ip, err := parseIP(actor.IP)
	if err != nil {
		return nil
	}
	return []Limit{{Scope: "ch:ip", Tenant: u.Tenant, Subject: e.clientHash(u.Tenant, ip), PerHour: e.opt.Limits.ChallengesPerIP, Name: "ip"}}
}

// sendLimits returns the limits a code sent on channel c to `to` takes
// (none for TOTP and passkeys), or the error that refuses it before any
// limit is taken.
func (e *core) sendLimits(ctx context.Context, t Tenant, p Policy, u UserRef, c Channel, to string, actor Actor) ([]Limit, error) {
	switch c {
	case ChannelSMS:
		return e.smsLimits(ctx, t, p, u, to, actor)
	case ChannelEmail:
		return e.emailLimits(u, to, actor), nil
	}
	return nil, nil
}

// sendAllowed takes the limits of a code about to be sent on channel c
// (the caller's own in one round trip, then the shared ones), before the
// write that queues it.
func (e *core) sendAllowed(ctx context.Context, t Tenant, p Policy, u UserRef, c Channel, to string, actor Actor) error {
	limits, err := e.sendLimits(ctx, t, p, u, c, to, actor)
	if err != nil || len(limits) == 0 {
		return err
	}
	tripped, wait, err := e.store.Allow(ctx, limits, e.now())
	if err != nil {
		return Internal(err)
	}
	return e.limitRefused(ctx, t, p, c, to, tripped, wait)
}

// limitRefused alerts the managers when a send limit refused a code for
// `to` and returns the error to answer; nil when none did ("").
func (e *core) limitRefused(ctx context.Context, t Tenant, p Policy, c Channel, to, tripped string, wait time.Duration) error {
	if tripped == "" {
		return nil
	}
	details := map[string]string{"limit": tripped}
	kind := message.EvAlertEmailLimit
	if c == ChannelSMS {
		kind = message.EvAlertSMSLimit
		switch tripped {
		case "country":
			if _, region, err := ParsePhone(to); err == nil {
				details["country"] = region
			}
		case "number":
			details["prefix"] = MaskPhone(to)
		}
	}
	e.alert(ctx, t, p, kind, details)
	return ErrResendTooSoon(wait).With("limit", tripped)
}

// alert tells the tenant's managers, at most once per kind per hour.
func (e *core) alert(ctx context.Context, t Tenant, p Policy, kind message.EventType, details map[string]string) {
	if len(p.ManagerEmails) == 0 {
		return
	}
	first, err := e.store.UseToken(ctx, "alert:"+t.ID+":"+string(kind), time.Hour)
	if err != nil || !first {
		return
	}
	ev := e.event(t.ID, "", kind, Actor{Kind: message.ActorSystem})
	for k, v := range details {
		ev.Details[k] = v
	}
	if err := e.store.AppendEvent(ctx, ev, e.managerJobs(t, p.ManagerEmails, ev)); err != nil {
		e.log.Warn("alert not recorded", "tenant", t.ID, "kind", kind, "err", err)
	}
}

// Alert records a system alert for a tenant's managers (used by the
// delivery side when deliveries keep failing).
func (e *Policies) Alert(ctx context.Context, tenant string, kind message.EventType, details map[string]string) {
	t, err := e.tenant(ctx, tenant)
	if err != nil {
		return
	}
	pol, err := e.loadPolicy(ctx, tenant)
	if err != nil {
		return
	}
	if !slices.Contains([]message.EventType{message.EvAlertDeliveryFailing, message.EvAlertLoginSpike}, kind) {
		return
	}
	e.alert(ctx, t, pol.Policy, kind, details)
}
