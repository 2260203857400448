package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The daily tally's per-login fields beside the decisions: one per
// country a counted login came from and one per signal that scored it.
// The store writes them with the login's tally (tenant side of SaveLogin).
const (
	tallyCountry = "cc:"
	tallySignal  = "sig:"
)

// TallyFields are the tally fields a counted login adds besides its
// decision: its country and the names of its signals.
func TallyFields(rec LoginRecord) []string {
	var out []string
	if rec.Place != nil && rec.Place.Country != "" {
		out = append(out, tallyCountry+rec.Place.Country)
	}
	for _, s := range rec.Signals {
		out = append(out, tallySignal+s)
	}
	return out
}

// smsHourField counts the SMS sent in one hour of the day, so the current
// hour's use of the tenant's SMS cap can be read back from the day's tally.
func smsHourField(t time.Time) string { return fmt.Sprintf("sms_sent_h%02d", t.UTC().Hour()) }

// OverviewDays is how many days of tallies are kept and shown.
const OverviewDays = 30

// DayStats is one UTC day of a tenant's tally.
type DayStats struct {
	Day                                   string
	Logins, Allowed, Challenged, Denied   int64
	Enrol, Verified, Failed               int64
	SMSSent, SMSFailed, MailSent, MailErr int64
}

// Tally is a named count.
type Tally struct {
	Name  string
	Count int64
}

// Overview is a tenant's last OverviewDays days for its managers.
type Overview struct {
	Days      []DayStats // oldest first, today last
	Signals   []Tally    // signals that scored the logins, most first
	Countries []Tally    // the logins' countries, most first
	// SMSPerHour is the tenant's SMS cap an hour (the installation's, or
	// the policy's lower one); SMSThisHour the SMS sent this hour.
	SMSPerHour  int
	SMSThisHour int64
}

// Overview reads the tenant's daily tallies of the last OverviewDays days.
func (e *Policies) Overview(ctx context.Context, tenant string) (Overview, error) {
	if _, err := e.tenant(ctx, tenant); err != nil {
		return Overview{}, err
	}
	pol, err := e.loadPolicy(ctx, tenant)
	if err != nil {
		return Overview{}, err
	}
	now := e.now()
	ov := Overview{SMSPerHour: e.smsCap(pol.Policy)}
	signals, countries := map[string]int64{}, map[string]int64{}
	for i := OverviewDays - 1; i >= 0; i-- {
		day := Day(now.Add(-time.Duration(i) * 24 * time.Hour))
		t, err := e.store.Tally(ctx, tenant, day)
		if err != nil {
			return Overview{}, Internal(err)
		}
		ov.Days = append(ov.Days, DayStats{Day: day, Logins: t["logins"], Allowed: t[string(DecisionAllow)],
			Challenged: t[string(DecisionChallenge)], Denied: t[string(DecisionDeny)], Enrol: t[string(DecisionEnroll)],
			Verified: t["challenges_verified"], Failed: t["challenges_failed"],
			SMSSent: t["sms_sent"], SMSFailed: t["sms_failed"], MailSent: t["emails_sent"], MailErr: t["emails_failed"]})
		for f, n := range t {
			if name, ok := strings.CutPrefix(f, tallySignal); ok {
				signals[name] += n
			} else if cc, ok := strings.CutPrefix(f, tallyCountry); ok {
				countries[cc] += n
			}
		}
		if i == 0 {
			ov.SMSThisHour = t[smsHourField(now)]
		}
	}
	ov.Signals, ov.Countries = ranked(signals), ranked(countries)
	return ov, nil
}

// smsCap is the tenant's SMS cap an hour under policy p.
func (e *core) smsCap(p Policy) int {
	c := e.opt.Limits.SMSPerTenant
	if p.SMSPerHour > 0 && p.SMSPerHour < c {
		c = p.SMSPerHour
	}
	return c
}

// ranked orders counts most first (then by name), at most ten of them.
func ranked(m map[string]int64) []Tally {
	out := make([]Tally, 0, len(m))
	for k, v := range m {
		out = append(out, Tally{Name: k, Count: v})
	}
	slices.SortFunc(out, func(a, b Tally) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	return out[:min(len(out), 10)]
}
