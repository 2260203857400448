package engine

import (
	"testing"

	"github.com/stepup-auth/stepup/risk"
)

func TestDecide(t *testing.T) {
	base := DefaultPolicy()
	with := func(f func(*Policy)) Policy { p := base; f(&p); return p }
	required := with(func(p *Policy) { p.Mode = ModeRequired })
	off := with(func(p *Policy) { p.Mode = ModeOff })
	every := with(func(p *Policy) { p.Challenge = ChallengeEveryLogin })
	coldAllow := with(func(p *Policy) { p.ColdStart = ColdStartAllow })
	low := risk.Result{Score: base.Thresholds.Challenge - 1}
	high := risk.Result{Score: base.Thresholds.Challenge}
	deny := risk.Result{Score: base.Thresholds.Deny}
	cold := risk.Result{Score: 0, NoHistory: true}
	trusted := risk.Result{Score: base.Thresholds.Deny - 1, Force: risk.ForceAllow}
	blocked := risk.Result{Score: 0, Force: risk.ForceDeny}
	listed := risk.Result{Score: 0, Force: risk.ForceChallenge} // an IP list of action challenge

	tests := []struct {
		name      string
		f         facts
		want      Decision
		useGrace  bool
		required  bool
		graceLeft int // -1: no grace count in the answer
		suggested bool
	}{
		{"familiar login of an enrolled user", facts{Risk: low, Policy: base, Enrolled: true, GraceLeft: -1}, DecisionAllow, false, false, -1, false},
		{"risky login of an enrolled user", facts{Risk: high, Policy: base, Enrolled: true, GraceLeft: -1}, DecisionChallenge, false, false, -1, false},
		{"score at the deny threshold", facts{Risk: deny, Policy: base, Enrolled: true, GraceLeft: -1}, DecisionDeny, false, false, -1, false},
		{"blocked network beats everything", facts{Risk: blocked, Policy: base, Enrolled: true, GraceLeft: -1, Remembered: true}, DecisionDeny, false, false, -1, false},
		{"trusted network allows a risky login", facts{Risk: trusted, Policy: base, Enrolled: true, GraceLeft: -1}, DecisionAllow, false, false, -1, false},
		{"remembered device skips the challenge", facts{Risk: high, Policy: base, Enrolled: true, GraceLeft: -1, Remembered: true}, DecisionAllow, false, false, -1, false},
		{"a forced challenge beats a remembered device", facts{Risk: low, Policy: base, Enrolled: true, GraceLeft: -1, Forced: true, Remembered: true}, DecisionChallenge, false, false, -1, false},
		{"every login challenges a familiar one", facts{Risk: low, Policy: every, Enrolled: true, GraceLeft: -1}, DecisionChallenge, false, false, -1, false},
		{"cold start challenges by default", facts{Risk: cold, Policy: base, Enrolled: true, GraceLeft: -1}, DecisionChallenge, false, false, -1, false},
		{"cold start allowed by policy", facts{Risk: cold, Policy: coldAllow, Enrolled: true, GraceLeft: -1}, DecisionAllow, false, false, -1, false},
		{"not enrolled, optional: allowed and nudged", facts{Risk: high, Policy: base, GraceLeft: -1}, DecisionAllow, false, false, -1, true},
		{"not enrolled, required, grace left", facts{Risk: high, Policy: required, GraceLeft: 3}, DecisionAllow, true, true, 2, false},
		{"not enrolled, required, last grace login", facts{Risk: high, Policy: required, GraceLeft: 1}, DecisionAllow, true, true, 0, false},
		{"not enrolled, required, no grace left", facts{Risk: low, Policy: required, GraceLeft: 0}, DecisionEnroll, false, true, 0, false},
		{"trusted network does not skip enrolment", facts{Risk: trusted, Policy: required, GraceLeft: 0}, DecisionEnroll, false, true, 0, false},
		{"denied login asks for no enrolment", facts{Risk: deny, Policy: required, GraceLeft: 0}, DecisionDeny, false, false, -1, false},
		{"2FA off allows a risky login", facts{Risk: high, Policy: off, Enrolled: true, GraceLeft: -1, Forced: true}, DecisionAllow, false, false, -1, false},
		{"IP list challenges a familiar login", facts{Risk: listed, Policy: base, Enrolled: true, GraceLeft: -1}, DecisionChallenge, false, false, -1, false},
		{"IP list challenge beats a remembered device", facts{Risk: listed, Policy: base, Enrolled: true, GraceLeft: -1, Remembered: true}, DecisionChallenge, false, false, -1, false},
		{"IP list challenge on a cold start allowed by policy", facts{Risk: risk.Result{NoHistory: true, Force: risk.ForceChallenge}, Policy: coldAllow, Enrolled: true, GraceLeft: -1}, DecisionChallenge, false, false, -1, false},
		{"IP list challenge cannot challenge a user without 2FA", facts{Risk: listed, Policy: base, GraceLeft: -1}, DecisionAllow, false, false, -1, true},
		{"IP list challenge leaves grace logins to the grace", facts{Risk: listed, Policy: required, GraceLeft: 2}, DecisionAllow, true, true, 1, false},
		{"IP list challenge with 2FA off allows", facts{Risk: listed, Policy: off, Enrolled: true, GraceLeft: -1}, DecisionAllow, false, false, -1, false},
		{"IP list deny (a deny force) beats a remembered device", facts{Risk: blocked, Policy: base, Enrolled: true, GraceLeft: -1, Remembered: true, Forced: true}, DecisionDeny, false, false, -1, false},
		{"2FA off still denies", facts{Risk: deny, Policy: off, Enrolled: true, GraceLeft: -1}, DecisionDeny, false, false, -1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := decide(tt.f)
			if v.Decision != tt.want || v.UseGrace != tt.useGrace {
				t.Fatalf("decide = %s (grace used %v), want %s (grace used %v)", v.Decision, v.UseGrace, tt.want, tt.useGrace)
			}
			en := v.Enrollment
			if en.Required != tt.required || en.Suggested != tt.suggested {
				t.Errorf("enrollment = %+v, want required %v suggested %v", en, tt.required, tt.suggested)
			}
			switch {
			case tt.graceLeft < 0 && en.GraceLoginsLeft != nil:
				t.Errorf("grace_logins_left = %d, want none", *en.GraceLoginsLeft)
			case tt.graceLeft >= 0 && (en.GraceLoginsLeft == nil || *en.GraceLoginsLeft != tt.graceLeft):
				t.Errorf("grace_logins_left = %v, want %d", en.GraceLoginsLeft, tt.graceLeft)
			}
		})
	}
}

func TestGraceLeft(t *testing.T) {
	req := DefaultPolicy()
	req.Mode, req.GraceLogins = ModeRequired, 5
	enrolled := Account{Factors: Factors{Email: &EmailFactor{}}}
	tests := []struct {
		name string
		p    Policy
		a    Account
		st   LoginState
		want int
	}{
		{"optional policy: no duty", DefaultPolicy(), Account{}, LoginState{}, -1},
		{"enrolled: no duty", req, enrolled, LoginState{}, -1},
		{"first login of the epoch", req, Account{}, LoginState{}, 5},
		{"logins used in this epoch", req, Account{}, LoginState{GraceEpoch: "e1", GraceUsed: 2}, 3},
		{"used up", req, Account{}, LoginState{GraceEpoch: "e1", GraceUsed: 9}, 0},
		{"an older epoch counts nothing", req, Account{}, LoginState{GraceEpoch: "e0", GraceUsed: 5}, 5},
	}
	for _, tt := range tests {
		if got := graceLeft(tt.p, tt.a, tt.st, "e1"); got != tt.want {
			t.Errorf("%s: graceLeft = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestDecideMonitor: monitor mode allows every login and keeps what
// enforcement would have decided; nothing is enforced, so no grace login is
// used and enrolment is only suggested.
func TestDecideMonitor(t *testing.T) {
	monitor := func(f func(*Policy)) Policy {
		p := DefaultPolicy()
		p.Enforcement = EnforcementMonitor
		f(&p)
		return p
	}
	base := monitor(func(*Policy) {})
	required := monitor(func(p *Policy) { p.Mode = ModeRequired })
	off := monitor(func(p *Policy) { p.Mode = ModeOff })
	low := risk.Result{Score: base.Thresholds.Challenge - 1}
	high := risk.Result{Score: base.Thresholds.Challenge}
	deny := risk.Result{Score: base.Thresholds.Deny}
	trusted := risk.Result{Score: base.Thresholds.Deny - 1, Force: risk.ForceAllow}
	blocked := risk.Result{Score: 0, Force: risk.ForceDeny}

	tests := []struct {
		name      string
		f         facts
		would     Decision // "": enforcement would allow too
		suggested bool
	}{
		{"familiar login: nothing to report", facts{Risk: low, Policy: base, Enrolled: true, GraceLeft: -1}, "", false},
		{"risky login would be challenged", facts{Risk: high, Policy: base, Enrolled: true, GraceLeft: -1}, DecisionChallenge, false},
		{"deny threshold would deny", facts{Risk: deny, Policy: base, Enrolled: true, GraceLeft: -1}, DecisionDeny, false},
		{"blocked network would deny", facts{Risk: blocked, Policy: base, Enrolled: true, GraceLeft: -1, Remembered: true}, DecisionDeny, false},
		{"trusted network would allow", facts{Risk: trusted, Policy: base, Enrolled: true, GraceLeft: -1}, "", false},
		{"forced challenge would challenge", facts{Risk: low, Policy: base, Enrolled: true, GraceLeft: -1, Forced: true}, DecisionChallenge, false},
		{"remembered device would allow", facts{Risk: high, Policy: base, Enrolled: true, GraceLeft: -1, Remembered: true}, "", false},
		{"grace login is allowed and not used", facts{Risk: high, Policy: required, GraceLeft: 3}, "", true},
		{"no grace left would ask to enrol", facts{Risk: low, Policy: required, GraceLeft: 0}, DecisionEnroll, true},
		{"a trusted network would still ask to enrol", facts{Risk: trusted, Policy: required, GraceLeft: 0}, DecisionEnroll, true},
		{"a would-be denied unenrolled user is nudged", facts{Risk: deny, Policy: required, GraceLeft: 0}, DecisionDeny, true},
		{"2FA off would still deny", facts{Risk: deny, Policy: off, Enrolled: true, GraceLeft: -1}, DecisionDeny, false},
		{"2FA off suggests nothing", facts{Risk: high, Policy: off, GraceLeft: -1}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := decide(tt.f)
			if v.Decision != DecisionAllow || v.Would != tt.would || v.UseGrace {
				t.Fatalf("decide = %s (would %q, grace used %v), want allow (would %q, no grace used)", v.Decision, v.Would, v.UseGrace, tt.would)
			}
			if want := (Enrollment{Suggested: tt.suggested}); v.Enrollment.Required || v.Enrollment.GraceLoginsLeft != nil || v.Enrollment.Suggested != want.Suggested {
				t.Errorf("enrollment = %+v, want only suggested %v", v.Enrollment, tt.suggested)
			}
			// What monitor reports is what enforce decides.
			enforced := tt.f
			enforced.Policy.Enforcement = EnforcementEnforce
			if e := decide(enforced).Decision; (e == DecisionAllow) != (tt.would == "") || (tt.would != "" && e != tt.would) {
				t.Errorf("enforced decision %s, monitor reports would %q", e, tt.would)
			}
		})
	}
}
