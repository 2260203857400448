package engine

import (
	"context"
	"encoding/hex"
	"slices"
	"time"

	"github.com/stepup-auth/stepup/message"
)

// smsAllowed checks the kill switch, the destination country and the SMS
// limits before a code is sent to `to`. Limits are keyed on what an
// attacker controls (the user, the number, the country, the client IP), so
// one abuser cannot exhaust another user's sends.
func (e *Engine) smsAllowed(ctx context.Context, t Tenant, p Policy, u UserRef, to string, actor Actor) error {
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
	limits := []Limit{
		{Scope: "sms:u", Tenant: u.Tenant, Subject: hex.EncodeToString(e.featMAC.Sum(u.Tenant, "user", u.User)[:8]), PerHour: e.opt.Limits.SMSPerUser, Name: "user"},
		{Scope: "sms:n", Tenant: u.Tenant, Subject: num, PerHour: e.opt.Limits.SMSPerNumber, Name: "number"},
		{Scope: "sms:c", Tenant: u.Tenant, Subject: region, PerHour: e.opt.Limits.SMSPerCountry, Name: "country"},
	}
	if ip, err := parseIP(actor.IP); err == nil {
		limits = append(limits, Limit{Scope: "ch:ip", Tenant: u.Tenant, Subject: e.ipHash(u.Tenant, ip), PerHour: e.opt.Limits.ChallengesPerIP, Name: "ip"})
	}
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

// alert tells the tenant's managers, at most once per kind per hour.
func (e *Engine) alert(ctx context.Context, t Tenant, p Policy, kind message.EventType, details map[string]string) {
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
func (e *Engine) Alert(ctx context.Context, tenant string, kind message.EventType, details map[string]string) {
	t, err := e.Tenant(ctx, tenant)
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
