package main

import (
	"fmt"
	"math"
	"slices"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/internal/evalset"
	"github.com/stepup-auth/stepup/risk"
)

// The what-if analysis replays the set through risk.Score alone, with
// exact counts kept in memory instead of the store's (bounded histories,
// count-min tenant counts), and scores every login as the engine does and
// as the same model with one of its options changed would: each variant
// takes one part of the model away (or moves one of its constants) to show
// what that part is worth and how sensitive the results are to it. Every
// variant is risk.Score itself, so the analysis cannot drift from the
// model. The tables compare log10 S thresholds, so the score mapping plays
// no part.

// scorerVariant is the model with some options changed.
type scorerVariant struct {
	name string
	set  func(*risk.Options)
}

// off is a value that switches an option's effect off where zero would
// mean its default.
const off = 1e-12

var scorerVariants = []scorerVariant{
	{name: "as the engine scores (exact counts)", set: func(*risk.Options) {}},
	{name: "one fixed unseen penalty (no per-user missing mass)", set: func(o *risk.Options) { o.MassPrior = 1e12 }},
	{name: "no targeted attacker in the user's ISP (TargetedShare → 0)", set: func(o *risk.Options) { o.TargetedShare = off }},
	{name: "no prior population (PriorLogins −1)", set: func(o *risk.Options) { o.PriorLogins = -1 }},
	{name: "unseen penalty 2 (half the default)", set: func(o *risk.Options) { o.UnseenPenalty = 2 }},
	{name: "unseen penalty 8 (twice the default)", set: func(o *risk.Options) { o.UnseenPenalty = 8 }},
	{name: "mass prior 1 login (half the default)", set: func(o *risk.Options) { o.MassPrior = 1 }},
	{name: "mass prior 4 logins (twice the default)", set: func(o *risk.Options) { o.MassPrior = 4 }},
	{name: "targeted share 0.25 (half the default)", set: func(o *risk.Options) { o.TargetedShare = 0.25 }},
	{name: "targeted share 1 (twice the default)", set: func(o *risk.Options) { o.TargetedShare = 1 }},
}

// shadowLogin is one login's log10 S under each variant.
type shadowLogin struct {
	kind evalset.Kind
	past int
	logS []float64 // per variant; +Inf for a cold start (always challenged)
}

// exactCounts is a history (a user's or the tenant's): counts per level
// and value, and the number of learned logins.
type exactCounts struct {
	n      int64
	values map[string]map[string]int64
}

func newExactCounts() *exactCounts { return &exactCounts{values: map[string]map[string]int64{}} }

func (c *exactCounts) learn(levels []risk.Level) {
	c.n++
	for _, l := range levels {
		m := c.values[l.Name]
		if m == nil {
			m = map[string]int64{}
			c.values[l.Name] = m
		}
		m[l.Value]++
	}
}

// shadowReplay scores every login of the set under every variant.
func shadowReplay(set *evalset.Set, geo engine.GeoLookup, ignoreDevice bool) []shadowLogin {
	opts := risk.Options{IgnoreDevice: ignoreDevice}
	variantOpts := make([]risk.Options, len(scorerVariants))
	for i, v := range scorerVariants {
		variantOpts[i] = opts
		v.set(&variantOpts[i])
	}
	tenant := newExactCounts()
	var tenantUsers int64 // |U|: users with a learned login
	users := map[string]*exactCounts{}
	out := make([]shadowLogin, 0, len(set.Logins))
	for _, l := range set.Logins {
		in := risk.Input{IP: l.IP, UserAgent: l.UserAgent, DeviceID: l.DeviceID}
		if geo != nil {
			in.Geo = geo.Lookup(l.IP)
		}
		f := risk.Extract(in, opts)
		levels := f.Levels()
		u := users[l.User]
		if u == nil {
			u = newExactCounts()
			users[l.User] = u
		}
		si := risk.ScoreInput{
			Features: f, Counts: make(map[string]risk.LevelCounts, len(levels)),
			UserLogins: u.n, TenantLogins: tenant.n, TenantUsers: tenantUsers,
		}
		for _, lv := range levels {
			si.Counts[lv.Name] = risk.LevelCounts{
				UserCount:      u.values[lv.Name][lv.Value],
				UserDistinct:   int64(len(u.values[lv.Name])),
				TenantCount:    tenant.values[lv.Name][lv.Value],
				TenantDistinct: int64(len(tenant.values[lv.Name])),
			}
		}
		sl := shadowLogin{kind: l.Kind, past: int(u.n), logS: make([]float64, len(scorerVariants))}
		for i, o := range variantOpts {
			if r := risk.Score(si, o); r.NoHistory {
				sl.logS[i] = math.Inf(1) // cold start: always challenged
			} else {
				sl.logS[i] = r.LogScore
			}
		}
		out = append(out, sl)
		if l.Kind == evalset.Legit {
			// Every legitimate login is learned, allowed or verified.
			if u.n == 0 {
				tenantUsers++
			}
			u.learn(levels)
			tenant.learn(levels)
		}
	}
	return out
}

// blockingLogThreshold returns the highest log10 S threshold at which at
// least target of every attacker kind in kinds scores at or above it.
func blockingLogThreshold(logins []shadowLogin, variant int, target float64, kinds ...evalset.Kind) float64 {
	th := math.Inf(1)
	for _, k := range kinds {
		var s []float64
		for _, l := range logins {
			if l.kind == k {
				s = append(s, l.logS[variant])
			}
		}
		if len(s) == 0 {
			continue
		}
		slices.Sort(s)
		// At most floor((1-target)·n) attempts may score below it.
		allowed := int(math.Floor((1 - target) * float64(len(s)) * (1 + 1e-9)))
		th = math.Min(th, s[allowed])
	}
	return th
}

// whatIfTables compare the variants at the engine's default challenge
// threshold (every attacker kind blocked, legitimate logins challenged)
// and at the log10 S threshold blocking blockTarget of naive and targeted
// attackers.
func whatIfTables(title string, logins []shadowLogin, defaultTh int) []table {
	share := func(i int, hit func(float64) bool, keep func(shadowLogin) bool) string {
		var s stats
		for _, l := range logins {
			if keep(l) {
				s.n++
				if hit(l.logS[i]) {
					s.hit++
				}
			}
		}
		return s.String()
	}
	legitIn := func(lo, hi int) func(shadowLogin) bool {
		return func(l shadowLogin) bool { return l.kind == evalset.Legit && l.past >= lo && l.past <= hi }
	}

	atDefault := table{title: fmt.Sprintf("%s, at the default threshold (%d)", title, defaultTh), head: []string{"scorer"}}
	for _, k := range evalset.Attackers {
		atDefault.head = append(atDefault.head, k.String())
	}
	for _, hb := range historyBuckets {
		atDefault.head = append(atDefault.head, "legit "+hb.name)
	}
	hitDefault := func(logS float64) bool { return math.IsInf(logS, 1) || risk.ScoreFromLog(logS) >= defaultTh }
	for i, v := range scorerVariants {
		row := []string{v.name}
		for _, k := range evalset.Attackers {
			row = append(row, share(i, hitDefault, func(l shadowLogin) bool { return l.kind == k }))
		}
		for _, hb := range historyBuckets {
			row = append(row, share(i, hitDefault, legitIn(hb.lo, hb.hi)))
		}
		atDefault.rows = append(atDefault.rows, row)
	}

	atBlocking := table{title: fmt.Sprintf("%s, at %.1f %% of naive and targeted attackers blocked", title, 100*blockTarget),
		head: []string{"scorer", "log10 S threshold", "vpn blocked"}}
	for _, p := range referenceCurve {
		atBlocking.head = append(atBlocking.head, "legit "+p.name)
	}
	for _, hb := range historyBuckets {
		atBlocking.head = append(atBlocking.head, "legit "+hb.name)
	}
	for i, v := range scorerVariants {
		th := blockingLogThreshold(logins, i, blockTarget, evalset.Naive, evalset.Targeted)
		hit := func(logS float64) bool { return logS >= th }
		row := []string{v.name, fmt.Sprintf("%.2f", th), share(i, hit, func(l shadowLogin) bool { return l.kind == evalset.VPNAttacker })}
		for _, p := range referenceCurve {
			row = append(row, share(i, hit, legitIn(p.lo, p.hi)))
		}
		for _, hb := range historyBuckets {
			row = append(row, share(i, hit, legitIn(hb.lo, hb.hi)))
		}
		atBlocking.rows = append(atBlocking.rows, row)
	}
	return []table{atDefault, atBlocking}
}

// agreement is the share of logins whose shadow score (first variant,
// through the engine's mapping) is within one point of the engine's.
func agreement(logins []shadowLogin, outs []outcome) float64 {
	ok, n := 0, 0
	for i, l := range logins {
		if math.IsInf(l.logS[0], 1) {
			continue
		}
		n++
		if d := risk.ScoreFromLog(l.logS[0]) - outs[i].Score; d >= -1 && d <= 1 {
			ok++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return float64(ok) / float64(n)
}
