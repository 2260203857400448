package risk

import (
	"slices"
	"testing"
)

func TestScoreIPLists(t *testing.T) {
	tor := ListHit{Name: "tor", Action: ListDeny}
	hosting := ListHit{Name: "hosting", Action: ListScore}
	vpn := ListHit{Name: "vpn", Action: ListChallenge}
	tests := []struct {
		name    string
		hits    []ListHit
		trusted bool
		score   int // on a cold start, 50 without lists
		signals []string
		details []string
		force   Force
	}{
		{"no list", nil, false, 50, []string{SignalNoHistory}, []string{""}, ForceNone},
		{"score list: ×20 by default", []ListHit{hosting}, false, 76, []string{SignalIPList, SignalNoHistory}, []string{"hosting", ""}, ForceNone},
		{"score list with its own factor", []ListHit{{Name: "dc", Action: ListScore, Factor: 100}}, false, 90, []string{SignalIPList, SignalNoHistory}, []string{"dc", ""}, ForceNone},
		{"challenge list forces a challenge", []ListHit{vpn}, false, 50, []string{SignalIPList, SignalNoHistory}, []string{"vpn", ""}, ForceChallenge},
		{"challenge beats trusted-allow", []ListHit{vpn}, true, 50, []string{SignalIPList, SignalNoHistory, SignalTrustedNetwork}, []string{"vpn", "", ""}, ForceChallenge},
		{"deny list forces a deny and sorts first", []ListHit{hosting, tor}, false, 76, []string{SignalIPList, SignalIPList, SignalNoHistory}, []string{"tor", "hosting", ""}, ForceDeny},
		{"deny beats challenge whatever the order", []ListHit{tor, vpn}, true, 50, []string{SignalIPList, SignalIPList, SignalNoHistory, SignalTrustedNetwork}, []string{"tor", "vpn", "", ""}, ForceDeny},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Score(ScoreInput{IPLists: tt.hits, Trusted: tt.trusted}, Options{})
			var names, details []string
			for _, s := range r.Signals {
				names, details = append(names, s.Name), append(details, s.Detail)
			}
			if r.Score != tt.score || r.Force != tt.force || !slices.Equal(names, tt.signals) || !slices.Equal(details, tt.details) {
				t.Errorf("score %d force %s signals %v %q, want %d %s %v %q", r.Score, r.Force, names, details, tt.score, tt.force, tt.signals, tt.details)
			}
		})
	}
}
