package app

import (
	"testing"

	"github.com/stepup-auth/stepup/config"
	"github.com/stepup-auth/stepup/risk"
)

// TestRiskOptionsCarryEveryKey: each risk.* key of the configuration
// reaches the scorer's options.
func TestRiskOptionsCarryEveryKey(t *testing.T) {
	r := config.Risk{IPv4Prefix: 22, IPv6Prefix: 56, IPv4BlockPrefix: 14, IPv6BlockPrefix: 28,
		UnseenPenalty: 6, MassPrior: 3, TargetedShare: 0.3, ReportedFactor: 40}
	want := risk.Options{IPv4Prefix: 22, IPv6Prefix: 56, IPv4BlockPrefix: 14, IPv6BlockPrefix: 28,
		UnseenPenalty: 6, MassPrior: 3, TargetedShare: 0.3, ReportedFactor: 40}
	if got := riskOptions(r); got != want {
		t.Errorf("riskOptions = %+v, want %+v", got, want)
	}
}
