package engine

import (
	"context"
	"encoding/hex"
	"slices"
	"strings"
	"time"
)

// smsAllowed checks the kill switch, the destination country and the SMS
// limits before a code is sent to `to`. Limits are keyed on what an
// attacker controls (the user, the number, the country, the client IP), so
// one abuser cannot exhaust another user's sends.
func (e *core) smsAllowed(ctx context.Context, t Tenant, p Policy, u UserRef, to string, actor Actor) error {
	if p.SMSDisabled {
		e.alert(ctx, t, p, "alert_kill_switch", map[string]string{"limit": "kill_switch"})
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
	perTenant := e.opt.Limits.SMSPerTenant
	if p.SMSPerHour > 0 && p.SMSPerHour < perTenant {
		perTenant = p.SMSPerHour
	}
	limits := []Limit{
		{Key: "sms:u:" + u.Tenant + ":" + hex.EncodeToString(e.featMAC.Sum(u.Tenant, "user", u.User)[:8]), PerHour: e.opt.Limits.SMSPerUser, Name: "user"},
		{Key: "sms:n:" + u.Tenant + ":" + num, PerHour: e.opt.Limits.SMSPerNumber, Name: "number"},
		{Key: "sms:c:" + u.Tenant + ":" + region, PerHour: e.opt.Limits.SMSPerCountry, Name: "country"},
		{Key: "sms:t:" + u.Tenant, PerHour: perTenant, Name: "tenant"},
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
		e.alert(ctx, t, p, "alert_sms_limit", details)
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
	return []Limit{{Key: "ch:ip:" + u.Tenant + ":" + e.ipHash(u.Tenant, ip), PerHour: e.opt.Limits.ChallengesPerIP, Name: "ip"}}
}

// emailAllowed checks the e-mail code limits before a code is mailed to
// `to`: per user, per address (across users) and per client IP.
func (e *core) emailAllowed(ctx context.Context, t Tenant, p Policy, u UserRef, to string, actor Actor) error {
	addr := hex.EncodeToString(e.featMAC.Sum(u.Tenant, "email", strings.ToLower(to))[:8])
	limits := []Limit{
		{Key: "mail:u:" + u.Tenant + ":" + hex.EncodeToString(e.featMAC.Sum(u.Tenant, "user", u.User)[:8]), PerHour: e.opt.Limits.EmailPerUser, Name: "user"},
		{Key: "mail:a:" + u.Tenant + ":" + addr, PerHour: e.opt.Limits.EmailPerAddress, Name: "address"},
	}
	limits = append(limits, e.ipLimit(u, actor)...)
	tripped, wait, err := e.store.Allow(ctx, limits, e.now())
	if err != nil {
		return Internal(err)
	}
	if tripped != "" {
		e.alert(ctx, t, p, "alert_email_limit", map[string]string{"limit": tripped})
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
func (e *core) alert(ctx context.Context, t Tenant, p Policy, kind string, details map[string]string) {
	if len(p.ManagerEmails) == 0 {
		return
	}
	first, err := e.store.UseToken(ctx, "alert:"+t.ID+":"+kind, time.Hour)
	if err != nil || !first {
		return
	}
	ev := e.event(t.ID, "", kind, Actor{Kind: "system"})
	for k, v := range details {
		ev.Details[k] = v
	}
	if err := e.store.AppendEvent(ctx, ev, e.managerJobs(t, p, ev)); err != nil {
		e.log.Warn("alert not recorded", "tenant", t.ID, "kind", kind, "err", err)
	}
}

// Alert records a system alert for a tenant's managers (used by the
// delivery side when deliveries keep failing).
func (e *Policies) Alert(ctx context.Context, tenant, kind string, details map[string]string) {
	t, err := e.tenant(ctx, tenant)
	if err != nil {
		return
	}
	pol, err := e.loadPolicy(ctx, tenant)
	if err != nil {
		return
	}
	if !slices.Contains([]string{"alert_delivery_failing", "alert_login_spike"}, kind) {
		return
	}
	e.alert(ctx, t, pol.Policy, kind, details)
}
