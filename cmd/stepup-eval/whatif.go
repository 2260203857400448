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
// as changed scorers would: each variant takes one part of the model away
// (or restores the reference code's weighted sums), to show what it is
// worth. Because only the ranking of the scores decides
// how many legitimate logins the 99.5 % threshold challenges, no score
// mapping or threshold can change that curve; these variants change the
// ranking. The tables compare log10 S thresholds, so the mapping plays no
// part.

// scorerVariant is a change to the score. The first variant is
// risk.Score itself; the others recompute log10 S from the same inputs
// with one part of the model changed (see variantLogS), so that each row
// shows what that part is worth.
type scorerVariant struct {
	name string
	// weightedSums scores each feature as the reference code does and as
	// stepup did before the back-off: Σ w_l·p(x_l) / Σ w_l·p(x_l|u), the
	// penalty when the user had none of the feature's values.
	weightedSums bool
	// noPrior drops log10 p(u|attack)/p(u|legit) = log10 N/(|U|·n_u),
	// which ranks every login of a frequent user lower and of a rare one
	// higher.
	noPrior bool
	// noTypicality pays the plain penalty for a network prefix the user
	// has not had, however many of the tenant's users come from it.
	noTypicality bool
	// nothingForgeable keeps Freeman's tenant-wide p(x) for the country
	// and the user agent too, so that a rare country or browser the user
	// has had vouches for whoever sends it.
	nothingForgeable bool
	// everyLevel pays the penalty for every level the user has not had
	// (a new country costs penalty³) instead of once per feature.
	everyLevel bool
}

var scorerVariants = []scorerVariant{
	{name: "as the engine scores (exact counts)"},
	{name: "previous scorer: the reference code's weighted sums over the levels", weightedSums: true},
	{name: "without the user prior N/(U·n_u)", noPrior: true},
	{name: "without the typicality of a new network prefix", noTypicality: true},
	{name: "nothing forgeable: tenant-wide p(x) for country and user agent too", nothingForgeable: true},
	{name: "penalty for every unseen level, not once per feature", everyLevel: true},
}

// variantLogS recomputes log10 S for a login without velocity or travel
// (the set has neither), as risk.Score does with the default options, with
// the variant's change. For the zero variant it equals risk.Score's
// LogScore; shadowReplay checks that it does.
func variantLogS(si risk.ScoreInput, v scorerVariant) float64 {
	k := float64(risk.DefaultPriorLogins)
	logPen := math.Log10(risk.DefaultUnseenPenalty)
	n := float64(si.UserLogins)
	N := math.Max(float64(si.TenantLogins), n) + k
	U := math.Max(float64(si.TenantUsers), 1) + k
	var logS float64
	if !v.noPrior {
		logS = math.Log10(N) - math.Log10(U) - math.Log10(n)
	}
	clamp := func(x, lo, hi float64) float64 { return math.Min(math.Max(x, lo), hi) }
	share := func(c risk.LevelCounts) float64 { // (c+1)/(N+M) with the prior population
		m := math.Max(float64(c.TenantDistinct), 0) + k
		return math.Min((clamp(float64(c.TenantCount), 0, N)+1)/math.Max(N+m, 1), 1)
	}
	forgeable := func(name string) bool {
		switch name {
		case risk.LevelIPCountry, risk.LevelUAFull, risk.LevelUABrowser, risk.LevelUAOS, risk.LevelUADevice:
			return !v.nothingForgeable
		}
		return false
	}
	asNet := si.Features.Geo.ASN != 0
	lv := si.Features.Levels()
	for i := 0; i < len(lv); {
		j := i + 1
		for j < len(lv) && lv[j].Feature == lv[i].Feature {
			j++
		}
		f := lv[i:j]
		i = j
		if v.weightedSums {
			var global, local float64
			for _, l := range f {
				c := si.Counts[l.Name]
				global += l.Weight * share(c)
				local += l.Weight * clamp(float64(c.UserCount), 0, n) / n
			}
			if local <= 0 {
				logS += logPen
			} else {
				logS += math.Log10(global) - math.Log10(local)
			}
			continue
		}
		for x, l := range f {
			c := si.Counts[l.Name]
			if cu := clamp(float64(c.UserCount), 0, n); cu > 0 {
				if !forgeable(l.Name) {
					logS += math.Log10(share(c)) - math.Log10(cu/n)
				}
				break
			}
			if v.everyLevel || x == len(f)-1 || si.Counts[f[x+1].Name].UserCount > 0 {
				logS += logPen
			}
			if l.Name == risk.LevelIPNet && !asNet && !v.noTypicality {
				m := math.Max(float64(c.TenantDistinct), 0) + k
				logS += math.Max(-math.Log10(math.Max(m, 1)*share(c)), -logPen)
			}
		}
	}
	return logS
}

// shadowLogin is one login's log10 S under each variant.
type shadowLogin struct {
	kind evalset.Kind
	past int
	logS []float64 // per variant; +Inf for a cold start (always challenged)
	// drift: variantLogS of the zero variant differs from risk.Score (the
	// recomputation no longer follows the scorer).
	drift bool
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
				UserDistinct:   int64(len(u.values[lv.Name])),
				TenantCount:    tenant.values[lv.Name][lv.Value],
				TenantDistinct: int64(len(tenant.values[lv.Name])),
			}
		}
		sl := shadowLogin{kind: l.Kind, past: int(u.n), logS: make([]float64, len(scorerVariants))}
		r := risk.Score(si, opts)
		for i, v := range scorerVariants {
			switch {
			case r.NoHistory:
				sl.logS[i] = math.Inf(1) // cold start: always challenged
			case i == 0:
				sl.logS[i] = r.LogScore
				sl.drift = math.Abs(variantLogS(si, v)-r.LogScore) > 1e-9
			default:
				sl.logS[i] = variantLogS(si, v)
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

// whatIfTable compares the variants at the threshold blocking blockTarget
// of naive and targeted attackers.
func whatIfTable(title string, logins []shadowLogin) table {
	drift := 0
	for _, l := range logins {
		if l.drift {
			drift++
		}
	}
	if drift > 0 {
		title += fmt.Sprintf("; WARNING: the variants' recomputation differs from risk.Score on %d logins, update variantLogS", drift)
	}
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
