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
	// UserDistinct is how many values new to the user his learned logins
	// brought at this level (at least the distinct values his history
	// holds there): the numerator of his Good–Turing missing mass. Zero
	// means unknown, and the level's missing mass is the prior,
	// 1/UnseenPenalty.
	UserDistinct int64
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
	// Reported is the decayed weight of fraud reports on the login's
	// network (1: one fresh report); see [ReportedTerm].
	Reported float64

	// IPLists are the operator's IP reputation lists that hold the
	// login's address (risk/iplist decides membership).
	IPLists []ListHit

	// Now is the time of the attempt; zero disables impossible travel.
	Now time.Time
}

// Force is a decision the tenant's lists impose whatever the score.
type Force int8

// Forced decisions, weakest first: deny beats challenge beats allow. A
// network on both the trusted and blocked lists, or a trusted network in a
// blocked country, is denied; a trusted network's address on a challenge
// IP list is challenged.
const (
	ForceNone      Force = iota // the score and policy decide
	ForceAllow                  // a trusted network: allow (the login is still learned)
	ForceChallenge              // an IP list with action challenge: challenge an enrolled user
	ForceDeny                   // a blocked network or country, an IP list with action deny: deny
)

// String returns "none", "allow", "challenge" or "deny".
func (f Force) String() string {
	switch f {
	case ForceAllow:
		return "allow"
	case ForceChallenge:
		return "challenge"
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
//	S = p(u|attack)/p(u|legit) · Π_k p(attack|x_k) · p(x_k|attack) / p(x_k|u, legit)
//
// with p(u|attack) = 1/|U| and p(u|legit) = n_u/N, and one factor F_k per
// feature k (ip, ua, dev), estimated by back-off over the feature's levels
// from the most specific to the least (see [featureTerm]):
//
//	F_k = p(x_l*|attack) / p(x_l*|u, legit)     at l*, the most specific level the user has had
//	    · τ / m_g                               if l* is not the feature's most specific level
//
// p(x_l*|u, legit) = c_{u,l*}/n_u. p(x_l*|attack) is Freeman's tenant-wide
// share (c+1)/(N+M) for the levels an attacker cannot choose (address,
// network, device id) and equals p(x_l*|u, legit) for those he can (the
// country, everything in the user agent), which then weigh only when new.
// When the login carries a device id, the user's IPv4 /24, block and AS
// are ones a targeted attacker can rent a line in: there p(x|attack) is
// at least TargetedShare · p(x|u). The novelty below l* is paid once, at
// g, the most general level the user has not had, as 1/m_g: m_g is the
// user's Good–Turing missing mass there, the share of his logins that
// brought a value new to him at g, smoothed toward 1/UnseenPenalty (see
// [missingMass]). τ = (1/M)/p(x), how much rarer a new network or block
// is in the tenant than an average one, is bounded to a tenfold change.
// Without a device id the user prior is capped at 1. p(attack|x) is 1
// times the velocity and impossible-travel factors that fire. Everything
// is summed in log10. Score is pure: it reads nothing but its arguments.
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
		if !in.Features.hasDevice() {
			// Without a device id a new user's logins bring new
			// networks and browsers at once (the first phone login is a
			// new carrier and a new user agent), and the prior would
			// count his short history a second time: it is capped at
			// even odds. With a device id it stays, as the device is
			// what tells a new user from his attacker.
			logS = math.Min(logS, 0)
		}

		lv := in.Features.levels
		for i := 0; i < len(lv); {
			j := i + 1
			for j < len(lv) && lv[j].Feature == lv[i].Feature {
				j++
			}
			t := featureTerm(lv[i:j], in.Counts, n, N, k, in.Features, o)
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

	logS, sig = applyIPLists(in.IPLists, logS, sig, &r.Force)
	if w := ReportedTerm(in.Reported, o); w > 0 {
		logS += w
		sig = append(sig, Signal{Name: SignalReportedNetwork, Detail: asDetail(in.Features.Geo), Weight: w})
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

// featureTerm returns log10 F_k for one feature's levels, most specific
// first. It replaces the reference code's weighted sums over the levels,
// Σ w_l·p(x_l) / Σ w_l·p(x_l|u), whose coarsest level (the country, shared
// by much of the tenant) dominated both sums: a new address in the user's
// country cost a few times a known one, while per-user constants (the user
// prior, how common the user's country and browser are) moved whole users
// by a factor of a hundred, so that attacks on some users scored below
// ordinary logins of others.
//
// Back-off: the factor is taken at l*, the most specific level whose value
// the user has had, as Freeman's ratio p(x|attack)/p(x|u, legit) there.
// For a value the user's history and few others share (the home network,
// the laptop), p(x)/p(x|u) = (c_x+1)/(N+M) · n_u/c_{u,x} cancels the user
// prior N/(|U|·n_u) down to about (c_x+1)/(|U|·c_{u,x}): users with many
// logins or few, in common countries or rare ones, are scored alike. The
// novelty below l* costs the penalty once, at the most general level the
// user has not had (the reference code's p(x|u) = p(x)/penalty): the levels
// under it are new because it is, and cost nothing more.
//
// The country and the user agent are what a targeted attacker reads off
// his victim and sends; he reproduces them as the victim does, so for
// those levels p(x|attack) = p(x|u, legit) and a familiar value is no
// evidence either way (rather than a rare one vouching for whoever copies
// it). Only the address, the network and the device id, which he cannot
// choose, keep Freeman's tenant-wide share as p(x|attack).
//
// A network prefix the user has not had has its penalty scaled by how
// typical it is of the tenant, τ = (1/M)/p(x): the share of an average
// prefix over this one's. A user who roams goes where other users go (a
// carrier's NAT pool); an attacker's proxy sits where none of them has
// been. τ is bounded to a factor of ten either way, and the scaled cost
// stays at least one: an unseen value never lowers the score. It is not applied to an AS, which
// many users and attackers share alike (a residential proxy can be rented
// in any large ISP). With a saturated count-min sketch every counter nears
// the average, τ nears one and the plain penalty remains.
//
// Counts are clamped into their possible ranges so estimates (a
// count-min sketch overcounts) cannot produce probabilities above one.
func featureTerm(lv []Level, counts map[string]LevelCounts, n, N, prior float64, f Features, o Options) float64 {
	var t, pen float64 // the known level's ratio, the novelty's cost
	penAt := ""        // the level the novelty is paid at
	typ := map[string]float64{}
	floor := typicalFloor
	for i, l := range lv {
		if l.Name == LevelIPASN {
			// The AS already credits a popular operator at its own
			// ratio: τ does not lower a new prefix of it.
			floor = 0
		}
		c := counts[l.Name]
		if cu := clamp(float64(c.UserCount), 0, n); cu > 0 {
			if !forgeable(l.Name) {
				pa := tenantShare(c, N, prior)
				if reachable(l.Name, f) {
					// A targeted attacker rents a line in the victim's ISP.
					pa = math.Max(pa, o.TargetedShare*cu/n)
				}
				t = math.Log10(pa) - math.Log10(cu/n)
			}
			break
		}
		if i == len(lv)-1 || counts[lv[i+1].Name].UserCount > 0 {
			// The most general level the user has not had: a new value
			// there is as likely as the user's own rate of new values.
			pen, penAt = -math.Log10(missingMass(c, n, o)), l.Name
		}
		if _, ok := counts[l.Name]; ok && (l.Name == LevelIPNet || l.Name == LevelIPBlock) {
			// (A level the store did not answer for has no τ.)
			m := math.Max(float64(c.TenantDistinct), 0) + prior
			typ[l.Name] = -math.Log10(math.Max(m, 1) * tenantShare(c, N, prior)) // log10 (1/M)/p(x)
		}
	}
	switch penAt {
	case LevelIPNet, LevelIPBlock:
		// A new network or block of a known operator or country: as
		// typical of the tenant as the level paid for says, down to a
		// tenth (a carrier's block that much of the tenant uses).
		return t + pen + clamp(typ[penAt], -pen-floor, typicalCap)
	default:
		// A new country or AS, or no network novelty: a rare prefix or
		// block raises the cost, a common one never lowers it.
		return t + pen + clamp(math.Max(typ[LevelIPNet], typ[LevelIPBlock]), -pen, typicalCap)
	}
}

// reachable reports whether a targeted attacker can log in from the
// user's own value of the level by renting a line in the user's ISP: the
// operator's AS and block, and an IPv4 /24 (shared by the ISP's customers), but
// not the address nor an IPv6 /64 (the home's own subnet). There the
// attacker's share is floored at TargetedShare times the user's, so a
// familiar network cannot alone vouch for a login. The floor applies only
// when the login carries a device id, which then tells the two apart;
// without one, a stranger in the user's /24 with the user's browser is a
// returning user to any model, and the floor would only challenge users.
func reachable(level string, f Features) bool {
	if !f.hasDevice() {
		return false
	}
	return level == LevelIPASN || level == LevelIPBlock || (level == LevelIPNet && f.IP.Is4())
}

// hasDevice reports whether the login carries a device id level.
func (f Features) hasDevice() bool {
	for _, l := range f.levels {
		if l.Name == LevelDeviceID {
			return true
		}
	}
	return false
}

// missingMass is the user's Good–Turing missing mass at a level: the share
// of his logins that brought a value new to him there, d/n, smoothed
// toward the prior 1/UnseenPenalty with the weight of MassPrior logins:
//
//	m = (d + a/penalty) / (n + a)
//
// and kept within [1/(n+a)/penalty, 1]. A user who always logs in from one
// device has d = 1 and pays about n for a new one; one whose carrier hands
// him a new /24 on every login has m near one there and pays little. An
// unknown d (zero) leaves the prior.
func missingMass(c LevelCounts, n float64, o Options) float64 {
	m0 := 1 / o.UnseenPenalty
	d := clamp(float64(c.UserDistinct), 0, n)
	if d <= 0 {
		return m0
	}
	a := o.MassPrior
	return clamp((d+a*m0)/(n+a), m0/(n+a), 1)
}

// tenantShare is Freeman's smoothed share (c+1)/(N+M) of the tenant's
// learned logins that had the value, at most one; N and M include the
// prior population.
func tenantShare(c LevelCounts, N, prior float64) float64 {
	ct := clamp(float64(c.TenantCount), 0, N)
	m := math.Max(float64(c.TenantDistinct), 0) + prior // each prior login has a value of its own
	return math.Min((ct+1)/math.Max(N+m, 1), 1)
}

// forgeable reports whether an attacker can send the victim's value of the
// level: the country (through a proxy or VPN exit there) and everything the
// User-Agent header says. The address, the network and the device id keep
// Freeman's attacker, a random login of the tenant: he cannot pick the
// victim's address, prefix or cookie, and an AS the victim shares with a
// large part of the tenant already weighs little. (Counting the AS as
// forgeable made every new IPv6 privacy address in the user's AS cost the
// full penalty, and challenged a quarter of experienced users' logins on
// the evaluation set with -asn.)
func forgeable(level string) bool {
	switch level {
	case LevelIPCountry, LevelUAFull, LevelUABrowser, LevelUAOS, LevelUADevice:
		return true
	}
	return false
}

// appendNovelty names what was new to the user in one feature, weighted by
// the feature's term t, or, when every level of an address or device id is
// familiar, that the value is shared: t > 0 there is Freeman's tenant-wide
// share above the user's own (an office NAT he rarely uses, a kiosk), a
// factor against him like any novelty. A feature that did not raise the
// score to even odds (say a new address in the user's usual network) yields
// no signal; the test is on the rounded 0–100 scale, so that a term just
// under even odds that rounds to 50 (and is challenged at the default
// threshold) is named too.
func appendNovelty(sig []Signal, f Features, lv []Level, counts map[string]LevelCounts, t float64) []Signal {
	if ScoreFromLog(t) < ScoreAtEvenOdds {
		return sig
	}
	unseen := func(name string) bool { return counts[name].UserCount <= 0 }
	switch lv[0].Feature {
	case FeatureIP:
		switch {
		case unseen(LevelIPCountry):
			sig = append(sig, Signal{Name: SignalNewCountry, Detail: countryOrUnknown(f.Country), Weight: t})
		case unseen(LevelIPBlock) && f.Block != "", unseen(LevelIPNet):
			d := asDetail(f.Geo)
			if d == "" {
				d = countryOrUnknown(f.Country)
			}
			sig = append(sig, Signal{Name: SignalNewNetwork, Detail: d, Weight: t})
		case unseen(LevelIPAddr):
			sig = append(sig, Signal{Name: SignalNewIP, Detail: countryOrUnknown(f.Country), Weight: t})
		case t > 0: // the tenant's share above the user's own
			sig = append(sig, Signal{Name: SignalSharedIP, Detail: countryOrUnknown(f.Country), Weight: t})
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
		case unseen(LevelUAFull):
			// A user agent the user has not sent, of a browser version
			// and OS he has had: a new build or minor version.
			sig = append(sig, Signal{Name: SignalNewBrowser, Detail: f.UA.Browser(), Weight: t})
		}
	case FeatureDevice:
		switch {
		case unseen(LevelDeviceID):
			sig = append(sig, Signal{Name: SignalNewDevice, Detail: f.UA.String(), Weight: t})
		case t > 0: // the tenant's share above the user's own
			sig = append(sig, Signal{Name: SignalSharedDevice, Detail: f.UA.String(), Weight: t})
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

// typicalFloor is how far below one (in log10) a typical network's τ may
// bring the factor of a new network: a tenth. A carrier's block that much
// of the tenant uses is less suspicious than an average one, but not
// evidence for the user.
const typicalFloor = 1.0

// typicalCap is how far above one (in log10) τ may raise it: tenfold, so
// that a block no user of a young tenant has had (τ of a thousand) does
// not outweigh everything else.
const typicalCap = 1.0

func clamp(v, lo, hi float64) float64 { return math.Min(math.Max(v, lo), hi) }
