package risk

import (
	"errors"
	"fmt"
)

// Default values used for zero fields of [Options].
const (
	DefaultIPv4Prefix    = 24
	DefaultIPv6Prefix    = 64
	DefaultIPv4Block     = 16
	DefaultIPv6Block     = 32
	DefaultMassPrior     = 2.0
	DefaultTargetedShare = 0.5
	DefaultUnseenPenalty = 4.0
	DefaultPriorLogins   = 10

	DefaultFailedPasswordUserThreshold = 5
	DefaultFailedPasswordUserFactor    = 10.0
	DefaultFailedPasswordIPThreshold   = 20
	DefaultFailedPasswordIPFactor      = 10.0
	DefaultFailedChallengeThreshold    = 3
	DefaultFailedChallengeFactor       = 10.0

	DefaultTravelSpeedKmh      = 1000.0
	DefaultTravelMinDistanceKm = 500.0
	DefaultTravelFactor        = 1000.0

	DefaultReportedFactor = 100.0
)

// Options tunes feature extraction and scoring. The zero value means
// defaults: every zero field takes the matching Default constant, so callers
// set only what they change. Pass the same Options to [Extract] and [Score].
type Options struct {
	// IPv4Prefix is the prefix length of the "ip.net" level for IPv4
	// addresses when no ASN is known (default 24).
	IPv4Prefix int
	// IPv6Prefix is the prefix length of the "ip.net" level for IPv6
	// addresses when no ASN is known (default 64, the usual end-site
	// subnet, so privacy addresses stay in the user's network).
	IPv6Prefix int

	// IPv4BlockPrefix and IPv6BlockPrefix are the prefix lengths of the
	// "ip.block" level (defaults 16 and 32), the operator's block a
	// carrier's NAT or a home's DHCP leases move within.
	IPv4BlockPrefix int
	IPv6BlockPrefix int

	// MassPrior is the weight a, in logins, of the prior in each level's
	// missing mass (m = (d + a/UnseenPenalty)/(n + a), default 2): how
	// many logins' worth of evidence a user needs before his own rate of
	// new values outweighs the default 1/UnseenPenalty.
	MassPrior float64

	// TargetedShare is ε, the least probability a targeted attacker has
	// of logging in from the user's own /24 or /16 relative to the user
	// (p(x|attack) ≥ ε·p(x|u) at ip.net, ip.block and ip.asn; default 0.5): he
	// rents a line in the victim's ISP. It caps how much a familiar
	// network alone can vouch for a login.
	TargetedShare float64

	// IgnoreDevice drops the "dev" feature even when a device id is given,
	// scoring on IP and user agent only (as Wiefling et al. measured).
	IgnoreDevice bool

	// UnseenPenalty is the prior of the factor a feature pays, once, for
	// the most general of its levels whose value the user has never had
	// (a new address in a known network, a new network in a known country,
	// or a feature entirely new to the user): 1/m, where m is the user's
	// missing mass at that level, starts at this value and moves to the
	// user's own rate of new values as his history grows (default 4, the
	// reference code's fixed penalty). Values below 1 are invalid.
	UnseenPenalty float64

	// PriorLogins is the size K of the prior population added to every
	// tenant's counts: K background logins by K users, each value seen
	// once (default DefaultPriorLogins; negative means none). It keeps a
	// young tenant's familiar logins low-scored; against a tenant of
	// thousands of logins it vanishes.
	PriorLogins int

	// FailedPasswordUserThreshold is the number of recent failed passwords
	// for the user at which FailedPasswordUserFactor multiplies
	// p(attack | x) (default 5). A negative value disables the rule.
	FailedPasswordUserThreshold int
	// FailedPasswordUserFactor defaults to 10.
	FailedPasswordUserFactor float64

	// FailedPasswordIPThreshold is the number of recent failed passwords
	// from the login's IP (across users) at which FailedPasswordIPFactor
	// applies (default 20). A negative value disables the rule.
	FailedPasswordIPThreshold int
	// FailedPasswordIPFactor defaults to 10.
	FailedPasswordIPFactor float64

	// FailedChallengeThreshold is the number of recently failed challenges
	// for the user at which FailedChallengeFactor applies (default 3). A
	// negative value disables the rule.
	FailedChallengeThreshold int
	// FailedChallengeFactor defaults to 10.
	FailedChallengeFactor float64

	// TravelSpeedKmh is the speed between the last successful login and
	// this one above which travel is impossible (default 1000 km/h, faster
	// than an airliner).
	TravelSpeedKmh float64
	// TravelMinDistanceKm is the distance under which travel is never
	// impossible, because mobile carriers and VPN exits jitter (default
	// 500 km).
	TravelMinDistanceKm float64
	// TravelFactor multiplies p(attack | x) on impossible travel (default
	// 1000). A negative value disables the rule.
	TravelFactor float64

	// ReportedFactor multiplies p(attack | x) for a login from a network
	// with a fresh fraud report (weight 1); a decayed weight w multiplies
	// it by ReportedFactor^w, at most ReportedFactor² (default 100). A
	// negative value disables the rule.
	ReportedFactor float64
}

// Validate reports the first field of o that holds an impossible value.
// Zero fields are valid: they mean the default.
func (o Options) Validate() error {
	switch {
	case o.IPv4Prefix < 0 || o.IPv4Prefix > 32:
		return fmt.Errorf("risk: IPv4Prefix %d out of range 1–32", o.IPv4Prefix)
	case o.IPv6Prefix < 0 || o.IPv6Prefix > 128:
		return fmt.Errorf("risk: IPv6Prefix %d out of range 1–128", o.IPv6Prefix)
	case o.IPv4BlockPrefix < 0 || o.IPv4BlockPrefix > 32:
		return fmt.Errorf("risk: IPv4BlockPrefix %d out of range 1–32", o.IPv4BlockPrefix)
	case o.IPv6BlockPrefix < 0 || o.IPv6BlockPrefix > 128:
		return fmt.Errorf("risk: IPv6BlockPrefix %d out of range 1–128", o.IPv6BlockPrefix)
	case o.MassPrior < 0:
		return errors.New("risk: MassPrior must not be negative")
	case o.TargetedShare < 0 || o.TargetedShare > 1:
		return fmt.Errorf("risk: TargetedShare %g out of range 0–1", o.TargetedShare)
	case o.UnseenPenalty != 0 && o.UnseenPenalty < 1:
		return fmt.Errorf("risk: UnseenPenalty %g below 1 would make unseen values lower the risk", o.UnseenPenalty)
	case o.TravelSpeedKmh < 0:
		return errors.New("risk: TravelSpeedKmh must not be negative")
	case o.TravelMinDistanceKm < 0:
		return errors.New("risk: TravelMinDistanceKm must not be negative")
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"FailedPasswordUserFactor", o.FailedPasswordUserFactor},
		{"FailedPasswordIPFactor", o.FailedPasswordIPFactor},
		{"FailedChallengeFactor", o.FailedChallengeFactor},
	} {
		if f.v != 0 && f.v < 1 {
			return fmt.Errorf("risk: %s %g below 1 would make the signal lower the risk", f.name, f.v)
		}
	}
	if o.TravelFactor > 0 && o.TravelFactor < 1 {
		return fmt.Errorf("risk: TravelFactor %g below 1 would make the signal lower the risk", o.TravelFactor)
	}
	return nil
}

// withDefaults fills zero fields. Out-of-range values that Validate would
// reject fall back to the defaults rather than panicking on the hot path.
func (o Options) withDefaults() Options {
	if o.IPv4Prefix <= 0 || o.IPv4Prefix > 32 {
		o.IPv4Prefix = DefaultIPv4Prefix
	}
	if o.IPv6Prefix <= 0 || o.IPv6Prefix > 128 {
		o.IPv6Prefix = DefaultIPv6Prefix
	}
	if o.IPv4BlockPrefix <= 0 || o.IPv4BlockPrefix > 32 {
		o.IPv4BlockPrefix = DefaultIPv4Block
	}
	if o.IPv6BlockPrefix <= 0 || o.IPv6BlockPrefix > 128 {
		o.IPv6BlockPrefix = DefaultIPv6Block
	}
	if o.MassPrior <= 0 {
		o.MassPrior = DefaultMassPrior
	}
	if o.TargetedShare <= 0 || o.TargetedShare > 1 {
		o.TargetedShare = DefaultTargetedShare
	}
	if o.UnseenPenalty < 1 {
		o.UnseenPenalty = DefaultUnseenPenalty
	}
	switch {
	case o.PriorLogins == 0:
		o.PriorLogins = DefaultPriorLogins
	case o.PriorLogins < 0:
		o.PriorLogins = 0
	}
	o.FailedPasswordUserThreshold = orInt(o.FailedPasswordUserThreshold, DefaultFailedPasswordUserThreshold)
	o.FailedPasswordIPThreshold = orInt(o.FailedPasswordIPThreshold, DefaultFailedPasswordIPThreshold)
	o.FailedChallengeThreshold = orInt(o.FailedChallengeThreshold, DefaultFailedChallengeThreshold)
	o.FailedPasswordUserFactor = orFactor(o.FailedPasswordUserFactor, DefaultFailedPasswordUserFactor)
	o.FailedPasswordIPFactor = orFactor(o.FailedPasswordIPFactor, DefaultFailedPasswordIPFactor)
	o.FailedChallengeFactor = orFactor(o.FailedChallengeFactor, DefaultFailedChallengeFactor)
	if o.TravelSpeedKmh <= 0 {
		o.TravelSpeedKmh = DefaultTravelSpeedKmh
	}
	if o.TravelMinDistanceKm <= 0 {
		o.TravelMinDistanceKm = DefaultTravelMinDistanceKm
	}
	if o.TravelFactor == 0 || (o.TravelFactor > 0 && o.TravelFactor < 1) {
		o.TravelFactor = DefaultTravelFactor
	}
	if o.ReportedFactor == 0 || (o.ReportedFactor > 0 && o.ReportedFactor < 1) {
		o.ReportedFactor = DefaultReportedFactor
	}
	return o
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func orFactor(v, def float64) float64 {
	if v < 1 {
		return def
	}
	return v
}
