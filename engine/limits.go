package engine

import (
	"context"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/stepup-auth/stepup/message"
)

// smsAllowed checks the kill switch, the destination country and the SMS
// limits before a code is sent to `to`. The limits keyed on what an
// attacker controls (the user, the number, the client IP) are taken first;
// the shared ones (the destination country, the tenant) only when those
// allowed, so one abuser cannot exhaust another user's sends.
func (e *core) smsAllowed(ctx context.Context, t Tenant, p Policy, u UserRef, to string, actor Actor) error {
	if p.SMSDisabled {
		e.alert(ctx, t, p, message.EvAlertKillSwitch, map[string]string{"limit": "kill_switch"})
		return ErrSMSDisabled
	}
	_, region, err := ParsePhone(to)
	if err != nil {
		return err
	}
	if err := smsCountryAllowed(p, region); err != nil {
		return err
	}
	num := hex.EncodeToString(e.featMAC.Sum(u.Tenant, "phone", to)[:8])
	perTenant := e.smsCap(p)
	limits := []Limit{
		{Scope: "sms:u", Tenant: u.Tenant, Subject: hex.EncodeToString(e.featMAC.Sum(u.Tenant, "user", u.User)[:8]), PerHour: e.opt.Limits.SMSPerUser, Name: "user"},
		{Scope: "sms:n", Tenant: u.Tenant, Subject: num, PerHour: e.opt.Limits.SMSPerNumber, Name: "number"},
		{Scope: "sms:c", Tenant: u.Tenant, Subject: region, PerHour: e.opt.Limits.SMSPerCountry, Name: "country", Shared: true},
		{Scope: "sms:t", Tenant: u.Tenant, PerHour: perTenant, Name: "tenant", Shared: true},
	}
	limits = append(limits, e.ipLimit(u, actor)...)
	tripped, wait, err := e.store.Allow(ctx, limits, e.now())
	if err != nil {
		return Internal(err)
	}
	if tripped != "" {
		details := map[string]string{"limit": tripped}
		if tripped == "country" {
			details["country"] = region
		}
		if tripped == "number" {
			details["prefix"] = MaskPhone(to)
		}
		e.alert(ctx, t, p, message.EvAlertSMSLimit, details)
		return ErrResendTooSoon(wait).With("limit", tripped)
	}
	return nil
}

// ipLimit is the per-client-IP limit on starting challenges, when the
// client's IP is known.
func (e *core) ipLimit(u UserRef, actor Actor) []Limit {
	ip, err := parseIP(actor.IP)
	if err != nil {
		return nil
	}
	return []Limit{{Scope: "ch:ip", Tenant: u.Tenant, Subject: e.ipHash(u.Tenant, ip), PerHour: e.opt.Limits.ChallengesPerIP, Name: "ip"}}
}

// emailAllowed checks the e-mail code limits before a code is mailed to
// `to`: per user, per address (across users) and per client IP.
func (e *core) emailAllowed(ctx context.Context, t Tenant, p Policy, u UserRef, to string, actor Actor) error {
	addr := hex.EncodeToString(e.featMAC.Sum(u.Tenant, "email", strings.ToLower(to))[:8])
	limits := []Limit{
		{Scope: "mail:u", Tenant: u.Tenant, Subject: hex.EncodeToString(e.featMAC.Sum(u.Tenant, "user", u.User)[:8]), PerHour: e.opt.Limits.EmailPerUser, Name: "user"},
		{Scope: "mail:a", Tenant: u.Tenant, Subject: addr, PerHour: e.opt.Limits.EmailPerAddress, Name: "address"},
	}
	limits = append(limits, e.ipLimit(u, actor)...)
	tripped, wait, err := e.store.Allow(ctx, limits, e.now())
	if err != nil {
		return Internal(err)
	}
	if tripped != "" {
		e.alert(ctx, t, p, message.EvAlertEmailLimit, map[string]string{"limit": tripped})
		return ErrResendTooSoon(wait).With("limit", tripped)
	}
	return nil
}

// sendAllowed checks the limits of the channel a code is about to be sent
// on (none for TOTP).
func (e *core) sendAllowed(ctx context.Context, t Tenant, p Policy, u UserRef, c Channel, to string, actor Actor) error {
	switch c {
	case ChannelSMS:
		return e.smsAllowed(ctx, t, p, u, to, actor)
	case ChannelEmail:
		return e.emailAllowed(ctx, t, p, u, to, actor)
	}
	return nil
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
	if err := e.store.AppendEvent(ctx, ev, e.managerJobs(t, p, ev)); err != nil {
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
