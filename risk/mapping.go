package risk

import "math"

// The score mapping: Score = clamp(round(ScoreAtEvenOdds +
// ScorePerDecade · log10 S), 0, 100).
//
// S = 1 (an attacker as likely as the user to produce this login) scores
// ScoreAtEvenOdds, and every factor of ten in S moves the score by
// ScorePerDecade points. With the defaults a score under 10 means
// S < 10⁻², a score of 70 or more S ≥ 10, and a score of 100 S ≥ 10^2.5.
const (
	ScoreAtEvenOdds = 50
	ScorePerDecade  = 20
)

// Default thresholds on the 0–100 score.
const (
	// DefaultChallengeThreshold: scores at or above it are challenged. It
	// is even odds, S ≥ 1: an attacker at least as likely as the user to
	// produce the login. On the evaluation set (cmd/stepup-eval, seeds 2
	// to 4) it challenges 2–4 % of the logins of users with 12 or more
	// past logins without device ids and under 1 % with them (RISK.md
	// section 2 asks for under 10 %), and blocks 99.4 % or more of every
	// attacker kind with device ids.
	DefaultChallengeThreshold = 50
	// DefaultDenyThreshold is above the highest score: never deny on score
	// alone; tenants opt in by lowering it.
	DefaultDenyThreshold = 101
)

// Risk levels returned by [ScoreLevel].
const (
	RiskLow    = "low"
	RiskMedium = "medium"
	RiskHigh   = "high"
)

// ScoreFromLog maps log10 S onto the 0–100 score. It is monotonic
// (non-decreasing) in its argument; NaN, which no valid input produces,
// maps to 100 so an arithmetic accident fails closed.
func ScoreFromLog(log10S float64) int {
	if math.IsNaN(log10S) {
		return 100
	}
	s := math.Round(ScoreAtEvenOdds + ScorePerDecade*log10S)
	return int(clamp(s, 0, 100))
}

// ScoreLevel names a score for a tenant's thresholds: high at or above
// deny, medium at or above challenge, low below.
func ScoreLevel(score, challenge, deny int) string {
	switch {
	case score >= deny:
		return RiskHigh
	case score >= challenge:
		return RiskMedium
	default:
		return RiskLow
	}
}
