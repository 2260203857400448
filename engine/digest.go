package engine

import (
	"context"
	"strconv"
	"time"

	"github.com/stepup-auth/stepup/message"
)

// Day names a UTC day in the tallies: 2006-01-02.
func Day(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// countEvents adds committed events to the day's tally for the digest.
// The tally is statistics: it is written after the change, not with it.
func (e *core) countEvents(ctx context.Context, tenant string, evs []Event) {
	fields := map[string]int64{}
	for _, ev := range evs {
		switch ev.Type {
		case message.EvSMSEnrolled, message.EvTOTPEnabled, message.EvEmailEnabled:
			fields["enrolled"]++
		case message.EvDisabled, message.EvAdminReset:
			fields["disabled"]++
		case message.EvReport:
			fields["reports"]++
		}
	}
	e.count(ctx, tenant, fields)
}

func (e *core) count(ctx context.Context, tenant string, fields map[string]int64) {
	if len(fields) == 0 {
		return
	}
	if err := e.store.Count(ctx, tenant, Day(e.now()), fields); err != nil {
		e.log.Warn("tally not counted", "tenant", tenant, "err", err)
	}
}

// CountDelivery records a delivery outcome (sms or mail) in the tenant's
// daily tally.
func (e *Policies) CountDelivery(ctx context.Context, tenant string, kind message.Kind, ok bool) {
	field := "emails_"
	if kind == message.KindSMS {
		field = "sms_"
	}
	fields := map[string]int64{}
	if ok {
		field += "sent"
		if kind == message.KindSMS {
			fields[smsHourField(e.now())] = 1
		}
	} else {
		field += "failed"
	}
	fields[field] = 1
	e.count(ctx, tenant, fields)
}

// SendDigests queues yesterday's digest for every tenant whose policy asks
// for one. Each tenant's digest of a day is sent once, whichever process
// runs this first; calling it often is cheap.
func (e *Policies) SendDigests(ctx context.Context) error {
	ts, err := e.store.Tenants(ctx)
	if err != nil {
		return Internal(err)
	}
	day := Day(e.now().Add(-24 * time.Hour))
	for _, t := range ts {
		pol, err := e.loadPolicy(ctx, t.ID)
		if err != nil {
			return err
		}
		if !pol.DailyDigest || len(pol.ManagerEmails) == 0 {
			continue
		}
		tally, err := e.store.Tally(ctx, t.ID, day)
		if err != nil {
			return Internal(err)
		}
		if len(tally) == 0 {
			continue // a day without activity needs no mail
		}
		first, err := e.core.store.UseToken(ctx, "digest:"+t.ID+":"+day, 72*time.Hour)
		if err != nil {
			return Internal(err)
		}
		if !first {
			continue
		}
		ev := e.event(t.ID, "", message.EvDailyDigest, Actor{Kind: message.ActorSystem})
		ev.Details["date"] = day
		for _, f := range []string{"logins", string(DecisionAllow), string(DecisionChallenge), string(DecisionDeny), string(DecisionEnroll), "challenges_verified",
			"challenges_failed", "enrolled", "disabled", "reports", "sms_sent", "sms_failed", "emails_sent", "emails_failed"} {
			name := map[Decision]string{DecisionAllow: "allowed", DecisionChallenge: "challenged", DecisionDeny: "denied", DecisionEnroll: "asked_to_enrol"}[Decision(f)]
			if name == "" {
				name = f
			}
			ev.Details[name] = strconv.FormatInt(tally[f], 10)
		}
		// What monitor mode allowed that enforcement would not have; only
		// when there is some, so an enforcing tenant's digest is unchanged.
		for _, d := range []Decision{DecisionChallenge, DecisionDeny, DecisionEnroll} {
			if n := tally["would_"+string(d)]; n > 0 {
				ev.Details["would_"+string(d)] = strconv.FormatInt(n, 10)
			}
		}
		if err := e.store.Enqueue(ctx, t.ID, e.managerJobs(t, pol.ManagerEmails, ev)); err != nil {
			return Internal(err)
		}
	}
	return nil
}
