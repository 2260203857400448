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
// as changed scorers would. Because only the ranking of the scores decides
// how many legitimate logins the 99.5 % threshold challenges, no score
// mapping or threshold can change that curve; these variants change the
// ranking. The tables compare log10 S thresholds, so the mapping plays no
// part.

// scorerVariant is a change to the score, applied to the engine's inputs.
type scorerVariant struct {
	name string
	// attackerKnows lists levels whose value a targeted attacker is
	// assumed to know: their p(x) is taken as 1 instead of the tenant's
	// frequency, so a rare country or browser no longer vouches for the
	// user.
	attackerKnows []string
	// noPrior drops log10 p(u|attack)/p(u|legit) = log10 N/(|U|·n_u),
	// which ranks every login of a frequent user lower and of a rare one
	// higher.
	noPrior bool
}

var scorerVariants = []scorerVariant{
	{name: "as the engine scores (exact counts)"},
	{name: "without the user prior N/(U·n_u)", noPrior: true},
	{name: "attacker knows country and browser: p(x)=1 for ip.cc, ua.browser, ua.device",
		attackerKnows: []string{risk.LevelIPCountry, risk.LevelUABrowser, risk.LevelUADevice}},
	{name: "both", noPrior: true,
		attackerKnows: []string{risk.LevelIPCountry, risk.LevelUABrowser, risk.LevelUADevice}},
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
				TenantCount:    tenant.values[lv.Name][lv.Value],
				TenantDistinct: int64(len(tenant.values[lv.Name])),
			}
		}
		sl := shadowLogin{kind: l.Kind, past: int(u.n), logS: make([]float64, len(scorerVariants))}
		for i, v := range scorerVariants {
			vi := si
			if len(v.attackerKnows) > 0 {
				vi.Counts = make(map[string]risk.LevelCounts, len(si.Counts))
				for name, c := range si.Counts {
					if slices.Contains(v.attackerKnows, name) {
						c.TenantCount, c.TenantDistinct = tenant.n, 0 // p(x) = (N+1)/N, clamped to 1
					}
					vi.Counts[name] = c
				}
			}
			r := risk.Score(vi, opts)
			logS := r.LogScore
			if r.NoHistory {
				logS = math.Inf(1) // cold start: always challenged
			} else if v.noPrior {
				n, N := float64(u.n), math.Max(float64(tenant.n), float64(u.n))
				logS -= math.Log10(N) - math.Log10(math.Max(float64(tenantUsers), 1)) - math.Log10(n)
			}
			sl.logS[i] = logS
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

// whatIfTable compares the variants at the threshold blocking blockTarget
// of naive and targeted attackers.
func whatIfTable(title string, logins []shadowLogin) table {
	t := table{title: title, head: []string{"scorer", "log10 S threshold", "vpn blocked"}}
	for _, p := range referenceCurve {
		t.head = append(t.head, "legit "+p.name)
	}
	for _, hb := range historyBuckets {
		t.head = append(t.head, "legit "+hb.name)
	}
	for i, v := range scorerVariants {
		th := blockingLogThreshold(logins, i, blockTarget, evalset.Naive, evalset.Targeted)
		share := func(keep func(shadowLogin) bool) string {
			var s stats
			for _, l := range logins {
				if keep(l) {
					s.n++
					if l.logS[i] >= th {
						s.hit++
					}
				}
			}
			return s.String()
		}
		row := []string{v.name, fmt.Sprintf("%.2f", th), share(func(l shadowLogin) bool { return l.kind == evalset.VPNAttacker })}
		for _, p := range referenceCurve {
			row = append(row, share(func(l shadowLogin) bool { return l.kind == evalset.Legit && l.past >= p.lo && l.past <= p.hi }))
		}
		for _, hb := range historyBuckets {
			row = append(row, share(func(l shadowLogin) bool { return l.kind == evalset.Legit && l.past >= hb.lo && l.past <= hb.hi }))
		}
		t.rows = append(t.rows, row)
	}
	return t
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
