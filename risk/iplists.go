package risk

import "math"

// ListAction is what an operator's IP reputation list does to a login from
// an address it holds (config risk.ip_lists[].action).
type ListAction string

// The list actions.
const (
	// ListScore multiplies p(attack | x) by the list's factor, like the
	// velocity signals (RISK.md section 3): evidence, not a verdict.
	ListScore ListAction = "score"
	// ListChallenge forces a challenge for an enrolled user, as a
	// manager's forced challenge does; a remembered device or a trusted
	// network does not skip it.
	ListChallenge ListAction = "challenge"
	// ListDeny forces a deny, as a blocked network does.
	ListDeny ListAction = "deny"
)

// DefaultListFactor is the factor a ListScore list multiplies the risk by
// when it names none: 20, log10 20 ≈ 1.3, 26 points on the 0–100 score
// (the velocity signals' 10 is 20 points). A familiar login from a listed
// address stays allowed; one that is also new in a feature or two (a new
// network, a new device) reaches the challenge threshold sooner.
const DefaultListFactor = 20.0

// ListHit is one of the operator's lists that holds the login's address.
type ListHit struct {
	// Name names the list in the ip_list signal's detail ("tor").
	Name string
	// Action is what the list does.
	Action ListAction
	// Factor is a ListScore list's factor (0: DefaultListFactor).
	Factor float64
}

// applyIPLists adds an ip_list signal per list holding the address: a
// score list multiplies S by its factor (RISK.md section 3, an attack
// factor like the velocity signals'); challenge and deny lists force
// their decision, the stronger force winning.
func applyIPLists(hits []ListHit, logS float64, sig []Signal, force *Force) (float64, []Signal) {
	for _, h := range hits {
		s := Signal{Name: SignalIPList, Detail: h.Name}
		switch h.Action {
		case ListScore:
			f := h.Factor
			if f <= 0 {
				f = DefaultListFactor
			}
			s.Weight = math.Log10(f)
			logS += s.Weight
		case ListChallenge:
			*force = max(*force, ForceChallenge)
		case ListDeny:
			*force = ForceDeny
			s.denies = true
		}
		sig = append(sig, s)
	}
	return logS, sig
}
