package risk

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
// when it names none: 20, log10 20 ≈ 1.3, about 26 points on the 0–100
// score, enough to lift a familiar login from a listed address (a Tor
// exit, a hosting provider) to a challenge under the default thresholds
// while leaving the decision to the score.
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
