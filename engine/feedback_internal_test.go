package engine

import (
	"math"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/risk"
)

// A fraud report's weight halves every half-life and the heaviest of a
// login's network reports counts.
func TestReportedWeightDecays(t *testing.T) {
	e := &core{opt: Options{ReportHalfLife: 72 * time.Hour}}
	now := time.Date(2026, 1, 10, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		rs   []NetworkReport
		want float64
	}{
		{"none", nil, 0},
		{"fresh", []NetworkReport{{Level: risk.LevelIPNet, Weight: 1, At: now}}, 1},
		{"one half-life", []NetworkReport{{Level: risk.LevelIPNet, Weight: 1, At: now.Add(-72 * time.Hour)}}, 0.5},
		{"two reports, heaviest", []NetworkReport{{Level: risk.LevelIPNet, Weight: 2, At: now.Add(-144 * time.Hour)},
			{Level: risk.LevelIPASN, Weight: 1, At: now.Add(-72 * time.Hour)}}, 0.5},
	}
	for _, tt := range tests {
		if got := e.reportedWeight(tt.rs, now); math.Abs(got-tt.want) > 1e-9 {
			t.Errorf("%s: weight %g, want %g", tt.name, got, tt.want)
		}
	}
}

// Only the network levels are reported.
func TestNetworkLevels(t *testing.T) {
	vals := []LevelValue{{Level: risk.LevelIPAddr}, {Level: risk.LevelIPNet}, {Level: risk.LevelIPASN}, {Level: risk.LevelUAFull}}
	got := networkLevels(vals)
	if len(got) != 2 || got[0].Level != risk.LevelIPNet || got[1].Level != risk.LevelIPASN {
		t.Fatalf("network levels = %+v", got)
	}
}
