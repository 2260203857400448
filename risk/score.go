package risk

import (
	"math"
	"strconv"
	"time"
)

// LevelCounts are the stored counts for one level's value in this login.
type LevelCounts struct {
	// UserCount is how many of the user's learned logins had the value.
	UserCount int64
	// TenantCount is how many of the tenant's learned logins had the value
	// (an estimate is fine: values are clamped to TenantLogins).
	TenantCount int64
	// TenantDistinct is how many distinct values the tenant has seen at this
	// level (M in the smoothing (c+1)/(N+M)).
	TenantDistinct int64
}

// ScoreInput is everything [Score] needs about one login. The engine reads
// it from storage in one round trip.
type ScoreInput struct {
	// Features are the login's features from [Extract].
	Features Features
	// Counts holds the counts of this login's values, keyed by level name
	// (LevelIPAddr …). A missing level counts as never seen.
	Counts map[string]LevelCounts

	// UserLogins is n_u, the user's learned logins. Zero means no history.
	UserLogins int64
	// TenantLogins is N, the tenant's learned logins.
	TenantLogins int64
	// TenantUsers is |U|, the tenant's users with at least one login.
	TenantUsers int64

	// FailedPasswordsUser counts the user's recent failed passwords.
	FailedPasswordsUser int
	// FailedPasswordsIP counts recent failed passwords from this login's IP
	// across all users, or the distinct users they targeted (credential
	// stuffing); the engine picks the measure, the threshold applies to it.
	FailedPasswordsIP int
	// FailedChallengesUser counts the user's recently failed challenges.
	FailedChallengesUser int

	// LastLogin is the user's last learned login with a location, nil when
	// unknown. Impossible travel needs it and a location in Features.
	LastLogin *Place

	// Trusted, BlockedNetwork and BlockedCountry report the login's
	// membership in the tenant's lists; the engine decides membership.
	Trusted, BlockedNetwork, BlockedCountry bool

	// Now is the time of the attempt; zero disables impossible travel.
	Now time.Time
}

// Force is a decision the tenant's lists impose whatever the score.
type Force int8

// Forced decisions. A block beats a trust: a network on both lists, or a
// trusted network in a blocked country, is denied.
const (
	ForceNone  Force = iota // the score and policy decide
	ForceAllow              // a trusted network: allow (the login is still learned)
	ForceDeny               // a blocked network or country: deny
)

// String returns "none", "allow" or "deny".
func (f Force) String() string {
	switch f {
	case ForceAllow:
		return "allow"
	case ForceDeny:
		return "deny"
	default:
		return "none"
	}
}

// Result is the risk of one login.
type Result struct {
	// LogScore is log10 S, the log of Freeman et al.'s likelihood ratio
	// times the attack-evidence factors. 0 means even odds.
	LogScore float64
	// Score is LogScore mapped onto 0–100 by [ScoreFromLog].
	Score int
	// Signals explain the score, deny-forcing ones first, then by
	// descending weight.
	Signals []Signal
	// NoHistory is true when the user has no learned login. The user and
	// feature terms are then skipped, as there is nothing to compare to:
	// LogScore holds only the velocity and travel factors (0, even odds,
	// without them) and Signals carry no novelty signals. The engine
	// applies its cold-start policy.
	NoHistory bool
	// Force is the decision the lists impose, if any.
	Force Force
}

// Score computes the risk of a login (RISK.md section 1):
//
//	S = p(u|attack)/p(u|legit) · Π_k p(attack|x_k) · p(x_k) / p(x_k|u,legit)
//
// with p(u|attack) = 1/|U|, p(u|legit) = n_u/N, and for each feature k
// (ip, ua, dev) the weighted sums over its levels l, as in Wiefling et al.'s
// reference code:
//
//	p(x_k)          = Σ_l w_l · (c_l + 1) / (N + M_l)
//	p(x_k|u, legit) = Σ_l w_l · c_{u,l} / n_u
//
// When p(x_k|u, legit) is 0 (the user never had the value at any level) the
// feature's factor is the fixed UnseenPenalty instead. p(attack|x) is 1
// times the velocity and impossible-travel factors that fire. Everything is
// summed in log10. Score is pure: it reads nothing but its arguments.
func Score(in ScoreInput, opts Options) Result {
	o := opts.withDefaults()
	r := Result{NoHistory: in.UserLogins <= 0}
	sig := make([]Signal, 0, 8)
	var logS float64

	if r.NoHistory {
		sig = append(sig, Signal{Name: SignalNoHistory})
	} else {
		n := float64(in.UserLogins)
		// The prior population: K background logins by K users, each with
		// values of its own, added to the tenant's counts. It lets a young
		// tenant (a handful of users, where every value is "common") tell
		// a familiar login from a new one, and fades as the tenant grows.
		k := float64(o.PriorLogins)
		N := math.Max(float64(in.TenantLogins), n) + k // the user's logins are the tenant's too
		U := math.Max(float64(in.TenantUsers), 1) + k
		logS = math.Log10(N) - math.Log10(U) - math.Log10(n)

		lv := in.Features.levels
		for i := 0; i < len(lv); {
			j := i + 1
			for j < len(lv) && lv[j].Feature == lv[i].Feature {
				j++
			}
			t := featureTerm(lv[i:j], in.Counts, n, N, k, o.UnseenPenalty)
			logS += t
			sig = appendNovelty(sig, in.Features, lv[i:j], in.Counts, t)
			i = j
		}
	}

	velocity := []struct {
		name      string
		count, th int
		factor    float64
		unit      string
	}{
		{SignalFailedPasswordBurst, in.FailedPasswordsUser, o.FailedPasswordUserThreshold, o.FailedPasswordUserFactor, " failed passwords"},
		{SignalIPFailedManyUsers, in.FailedPasswordsIP, o.FailedPasswordIPThreshold, o.FailedPasswordIPFactor, " failed passwords from this IP"},
		{SignalRecentFailedChallenges, in.FailedChallengesUser, o.FailedChallengeThreshold, o.FailedChallengeFactor, " failed challenges"},
	}
	for _, v := range velocity {
		if v.th > 0 && v.count >= v.th {
			w := math.Log10(v.factor)
			logS += w
			sig = append(sig, Signal{Name: v.name, Detail: strconv.Itoa(v.count) + v.unit, Weight: w})
		}
	}

	if last := in.LastLogin; last != nil && in.Features.Geo.HasLocation && o.TravelFactor > 0 && !in.Now.IsZero() {
		now := Place{At: in.Now, Lat: in.Features.Geo.Lat, Lon: in.Features.Geo.Lon, Country: in.Features.Country}
		if t := checkTravel(*last, now, o); t.impossible {
			w := math.Log10(o.TravelFactor)
			logS += w
			sig = append(sig, Signal{Name: SignalImpossibleTravel, Detail: t.detail(last.Country, now.Country), Weight: w})
		}
	}

	if in.BlockedCountry {
		sig = append(sig, Signal{Name: SignalBlockedCountry, Detail: countryOrUnknown(in.Features.Country)})
		r.Force = ForceDeny
	}
	if in.BlockedNetwork {
		sig = append(sig, Signal{Name: SignalBlockedNetwork, Detail: asDetail(in.Features.Geo)})
		r.Force = ForceDeny
	}
	if in.Trusted {
		sig = append(sig, Signal{Name: SignalTrustedNetwork, Detail: asDetail(in.Features.Geo)})
		if r.Force == ForceNone {
			r.Force = ForceAllow
		}
	}

	sortSignals(sig)
	r.LogScore = logS
	r.Score = ScoreFromLog(logS)
	r.Signals = sig
	return r
}

// featureTerm returns log10 of p(x_k) / p(x_k|u,legit) for one feature's
// levels. Counts are clamped into their possible ranges so estimates (a
// count-min sketch overcounts) cannot produce probabilities above one.
//
// The user side is the reference code's exactly: Σ w_l · c_{u,l} / n_u,
// unsmoothed, with the penalty when it is zero. The tenant side differs in
// one respect: the reference smooths only the most specific level, as
// c/(c+K) · c/(N+K) with K = 1 + the distinct values of the coarser levels,
// and leaves the coarser levels unsmoothed (c/N). Here every level gets
// RISK.md's Laplace estimate (c+1)/(N+M_l) with its own distinct count M_l,
// which needs no cross-level counts from storage. Both approach c/N for
// values seen often; they differ for rare values, where the reference's
// estimate is smaller (an unseen address gets 1/(K·(N+K)) there, 1/(N+M)
// here), which matters little because such a value is either the user's
// own (its p(x) is tiny either way) or unseen by the user (penalty, or the
// coarser levels dominate).
func featureTerm(lv []Level, counts map[string]LevelCounts, n, N, prior, penalty float64) float64 {
	var global, local float64
	for _, l := range lv {
		c := counts[l.Name]
		ct := clamp(float64(c.TenantCount), 0, N)
		m := math.Max(float64(c.TenantDistinct), 0) + prior // each prior login has a value of its own
		global += l.Weight * math.Min((ct+1)/math.Max(N+m, 1), 1)
		local += l.Weight * clamp(float64(c.UserCount), 0, n) / n
	}
	if local <= 0 {
		// The reference code sets p(x|u) = p(x)/4 here: smoothing the
		// user's side would make a value unseen by the user and the tenant
		// alike look harmless.
		return math.Log10(penalty)
	}
	return math.Log10(global) - math.Log10(local)
}

// appendNovelty names what was new to the user in one feature, weighted by
// the feature's term t. A feature that did not raise the score (t ≤ 0, say
// a new address in the user's usual network) yields no signal.
func appendNovelty(sig []Signal, f Features, lv []Level, counts map[string]LevelCounts, t float64) []Signal {
	if t <= 0 {
		return sig
	}
	unseen := func(name string) bool { return counts[name].UserCount <= 0 }
	switch lv[0].Feature {
	case FeatureIP:
		switch {
		case unseen(LevelIPCountry):
			sig = append(sig, Signal{Name: SignalNewCountry, Detail: countryOrUnknown(f.Country), Weight: t})
		case unseen(LevelIPNet):
			d := asDetail(f.Geo)
			if d == "" {
				d = countryOrUnknown(f.Country)
			}
			sig = append(sig, Signal{Name: SignalNewNetwork, Detail: d, Weight: t})
		case unseen(LevelIPAddr):
			sig = append(sig, Signal{Name: SignalNewIP, Detail: countryOrUnknown(f.Country), Weight: t})
		}
	case FeatureUA:
		nb, no := unseen(LevelUABrowser), unseen(LevelUAOS)
		switch {
		case nb && no:
			// Split the feature's weight in proportion to the levels'.
			share := WeightUABrowser / (WeightUABrowser + WeightUAOS)
			sig = append(sig,
				Signal{Name: SignalNewBrowser, Detail: f.UA.Browser(), Weight: t * share},
				Signal{Name: SignalNewOS, Detail: f.UA.OS(), Weight: t * (1 - share)})
		case nb:
			sig = append(sig, Signal{Name: SignalNewBrowser, Detail: f.UA.Browser(), Weight: t})
		case no:
			sig = append(sig, Signal{Name: SignalNewOS, Detail: f.UA.OS(), Weight: t})
		}
	case FeatureDevice:
		if unseen(LevelDeviceID) {
			sig = append(sig, Signal{Name: SignalNewDevice, Detail: f.UA.String(), Weight: t})
		}
	}
	return sig
}

func countryOrUnknown(cc string) string {
	if cc == "" {
		return UnknownCountry
	}
	return cc
}

// asDetail names the login's autonomous system, or "" when unknown. It never
// returns the prefix: that would show (most of) an IP address.
func asDetail(g GeoInfo) string {
	if g.ASN == 0 {
		return ""
	}
	d := "AS" + strconv.FormatUint(uint64(g.ASN), 10)
	if g.ASNOrg != "" {
		d += " " + g.ASNOrg
	}
	return d
}

func clamp(v, lo, hi float64) float64 { return math.Min(math.Max(v, lo), hi) }
