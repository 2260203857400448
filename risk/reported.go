package risk

import "math"

// reportedFloor is the decayed report weight below which a network is no
// longer reported (about seven half-lives after one report).
const reportedFloor = 0.01

// ReportedTerm is what fraud reports on the login's network add to log10 S,
// p(attack | x) raised by ReportedFactor^w for the reports' decayed weight
// w (capped at 2), or 0 below a weight of 0.01 or with the rule disabled.
func ReportedTerm(w float64, opts Options) float64 {
	o := opts.withDefaults()
	if o.ReportedFactor <= 0 || w < reportedFloor || math.IsNaN(w) {
		return 0
	}
	return math.Min(w, 2) * math.Log10(o.ReportedFactor)
}
