package risk

import (
	"slices"
	"testing"
)

// A reported network raises the score by ReportedFactor^w and says so;
// a report decayed below the floor or a disabled rule adds nothing.
func TestReportedNetwork(t *testing.T) {
	base := ScoreInput{UserLogins: 5, TenantLogins: 100, TenantUsers: 10}
	plain := Score(base, Options{})
	for _, tt := range []struct {
		w    float64
		opts Options
		want float64
	}{
		{1, Options{}, 2}, {0.5, Options{}, 1}, {5, Options{}, 4}, {0.001, Options{}, 0}, {1, Options{ReportedFactor: -1}, 0},
	} {
		in := base
		in.Reported = tt.w
		r := Score(in, tt.opts)
		if d := r.LogScore - plain.LogScore; d < tt.want-1e-9 || d > tt.want+1e-9 {
			t.Errorf("weight %g: log score +%g, want +%g", tt.w, d, tt.want)
		}
		has := slices.ContainsFunc(r.Signals, func(s Signal) bool { return s.Name == SignalReportedNetwork })
		if has != (tt.want > 0) {
			t.Errorf("weight %g: reported_network signal %v", tt.w, has)
		}
	}
}
