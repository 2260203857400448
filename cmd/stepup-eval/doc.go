// Command stepup-eval proves the risk model (RISK.md section 5). It
// generates a labelled, time-ordered login set for one tenant (package
// internal/evalset), replays it in time order through the real engine on
// the real Redis store, and prints how often legitimate users are
// challenged, by the length of their history, and how many attackers of
// each kind are blocked (challenged or denied), next to Wiefling et al.'s
// reference curve.
//
// Usage:
//
//	go run ./cmd/stepup-eval [-seed 1] [-users 1500] [-days 180] [-attacks 1]
//	    [-asn] [-whatif | -whatif-only] [-redis host:port] [-markdown]
//
// The replay is what production does, through the engine's own code
// paths: every user enrols an authenticator app before the first login
// (engine.StartTOTP, then engine.Verify with the app's first code); each
// attempt is one engine.Evaluate at the attempt's time (the engine's clock
// is the replay's); a challenged legitimate login is then answered with the
// app's current code through engine.Verify, which teaches the history
// exactly as stepupd does after a correct code; attackers'
// attempts are never learned. The set is replayed twice, side by side:
// with device ids, and without them (risk.Options.IgnoreDevice, no
// device_id), the honest test of the model as Wiefling et al. measured it.
//
// Each engine score is recorded with its label and the user's history
// length, so the tables can show any threshold: the engine's default, and
// the highest threshold that blocks 99.5 % of naive and of targeted
// attackers, at which Wiefling et al. report about half of a user's logins
// challenged after 4 logins, a quarter after 12 and 5–7 % after 40. The
// harness checks that the engine's own decisions are exactly "no history,
// or a score at or above the default threshold", so the sweep reproduces
// the engine. -whatif adds, for the model with one option changed (a part
// taken away, or a constant halved or doubled), the share of each attacker
// kind blocked and of legitimate logins challenged at the default
// threshold, and the curve at the blocking threshold, computed in memory
// with risk.Score itself (see whatif.go); -whatif-only prints just those
// tables, in seconds, without the replay.
//
// By default the store runs on an in-process miniredis whose keys expire on
// the replay's clock; -redis uses a real server instead (a new tenant on
// each run, left in place). -asn also loads an ASN database, so the
// scorer's network level is the autonomous system instead of the /24 or
// /64. -markdown prints the tables as Markdown for the README.
package main
