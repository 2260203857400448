package risk

import (
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	t0      = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tNow    = t0.Add(1000 * time.Hour)
	geoGB   = GeoInfo{Country: "GB", City: "London", Lat: 51.5, Lon: -0.12, HasLocation: true}
	geoAU   = GeoInfo{Country: "AU", City: "Sydney", Lat: -33.9, Lon: 151.2, HasLocation: true}
	aliceV4 = netip.MustParseAddr("81.2.69.10")
	aliceV6 = netip.MustParseAddr("2001:db8:1:2::10")
)

// alice is the user under test: 20 learned logins, 15 from her home IPv4
// address and 5 from an IPv6 privacy address in her /64, always with the
// same browser and laptop, in a tenant of 2,000 users with 10 logins each.
func aliceInput(ip netip.Addr, ua, device string, geo GeoInfo) Input {
	return Input{IP: ip, UserAgent: ua, DeviceID: device, Geo: geo}
}

var fixtures = map[bool]func() *fakeTenant{
	false: sync.OnceValue(func() *fakeTenant { return buildFixture(Options{}) }),
	true:  sync.OnceValue(func() *fakeTenant { return buildFixture(Options{IgnoreDevice: true}) }),
}

func buildFixture(opts Options) *fakeTenant {
	ft := newFakeTenant(opts)
	ft.populate(1, 2000, 10, t0)
	for i := range 20 {
		ip := aliceV4
		if i%4 == 3 {
			ip = aliceV6
		}
		ft.learn("alice", aliceInput(ip, uaChromeWin, "alice-laptop", geoGB), t0.Add(time.Duration(i)*time.Hour))
	}
	return ft
}

func TestScoreScenarios(t *testing.T) {
	known := aliceInput(aliceV4, uaChromeWin, "alice-laptop", geoGB)
	tests := []struct {
		name         string
		ignoreDevice bool
		in           Input
		opts         Options
		edit         func(*ScoreInput)
		min, max     int      // inclusive score bounds
		signals      []string // exact signal names in order
		force        Force
		noHistory    bool
	}{
		{
			name: "known user, IP, device and browser",
			in:   known, min: 0, max: 9,
		},
		{
			// A new browser version is a user agent the user has not had:
			// it costs the penalty and says so, but the known device and
			// address outweigh it by far.
			name: "browser update on known device",
			in:   aliceInput(aliceV4, uaChromeWin126, "alice-laptop", geoGB), min: 0, max: 9,
			signals: []string{SignalNewBrowser},
		},
		{
			// The same browser version and OS in a user agent the user has
			// not sent: the penalty is explained too.
			name: "new build of a known browser version",
			in: aliceInput(aliceV4, strings.Replace(uaChromeWin, "Chrome/125.0.0.0", "Chrome/125.0.6422.142", 1),
				"alice-laptop", geoGB),
			min: 0, max: 9,
			signals: []string{SignalNewBrowser},
		},
		{
			name: "new IPv6 address in known /64",
			in:   aliceInput(netip.MustParseAddr("2001:db8:1:2:a:b:c:d"), uaChromeWin, "alice-laptop", geoGB), min: 0, max: 9,
		},
		{
			// A stranger in Alice's ISP could have rented an address in
			// her /24, so the /24 no longer vouches for her (new_ip); her
			// laptop does.
			name: "new IPv4 address in known /24",
			in:   aliceInput(netip.MustParseAddr("81.2.69.200"), uaChromeWin, "alice-laptop", geoGB), min: 0, max: 9,
			signals: []string{SignalNewIP},
		},
		{
			name: "new country and new device",
			in:   aliceInput(netip.MustParseAddr("1.2.3.4"), uaChromeWin, "stranger", geoAU), min: 70, max: 100,
			signals: []string{SignalNewCountry, SignalNewDevice},
		},
		{
			name: "new country, device, browser and OS",
			in:   aliceInput(netip.MustParseAddr("1.2.3.4"), uaFirefoxLinux, "stranger", geoAU), min: 95, max: 100,
			signals: []string{SignalNewCountry, SignalNewDevice, SignalNewBrowser, SignalNewOS},
		},
		{
			// A network no user of the tenant has been seen in, in the
			// user's own country, is what a targeted attacker looks like:
			// it weighs as much as a new country.
			name: "new network in home country on new phone",
			in:   aliceInput(netip.MustParseAddr("5.6.7.8"), uaIPhone, "alice-phone", geoGB), min: 70, max: 100,
			signals: []string{SignalNewNetwork, SignalNewDevice, SignalNewBrowser, SignalNewOS},
		},
		{
			name:         "without device: known",
			ignoreDevice: true,
			in:           known, min: 0, max: 39,
		},
		{
			name:         "without device: new IPv4 address in known /24",
			ignoreDevice: true,
			in:           aliceInput(netip.MustParseAddr("81.2.69.200"), uaChromeWin, "", geoGB), min: 0, max: DefaultChallengeThreshold - 1,
		},
		{
			name:         "without device: new country and browser",
			ignoreDevice: true,
			in:           aliceInput(netip.MustParseAddr("1.2.3.4"), uaFirefoxLinux, "", geoAU), min: 80, max: 100,
			signals: []string{SignalNewCountry, SignalNewBrowser, SignalNewOS},
		},
		{
			name: "impossible travel on known device",
			in:   aliceInput(netip.MustParseAddr("1.2.3.4"), uaChromeWin, "alice-laptop", geoAU),
			edit: func(si *ScoreInput) {
				si.LastLogin = &Place{At: tNow.Add(-2 * time.Hour), Lat: geoGB.Lat, Lon: geoGB.Lon, Country: "GB"}
			},
			min: 50, max: 80,
			signals: []string{SignalImpossibleTravel, SignalNewCountry},
		},
		{
			name: "long trip at airliner speed is possible",
			in:   aliceInput(netip.MustParseAddr("1.2.3.4"), uaChromeWin, "alice-laptop", geoAU),
			edit: func(si *ScoreInput) {
				si.LastLogin = &Place{At: tNow.Add(-24 * time.Hour), Lat: geoGB.Lat, Lon: geoGB.Lon, Country: "GB"}
			},
			min: 0, max: 20,
			signals: []string{SignalNewCountry},
		},
		{
			name: "short hop is never impossible",
			in:   aliceInput(aliceV4, uaChromeWin, "alice-laptop", GeoInfo{Country: "GB", Lat: 53.48, Lon: -2.24, HasLocation: true}),
			edit: func(si *ScoreInput) {
				si.LastLogin = &Place{At: tNow.Add(-time.Minute), Lat: geoGB.Lat, Lon: geoGB.Lon, Country: "GB"}
			},
			min: 0, max: 9,
		},
		{
			name: "blocked country forces deny",
			in:   aliceInput(netip.MustParseAddr("1.2.3.4"), uaChromeWin, "stranger", geoAU),
			edit: func(si *ScoreInput) { si.BlockedCountry = true },
			min:  70, max: 100,
			signals: []string{SignalBlockedCountry, SignalNewCountry, SignalNewDevice},
			force:   ForceDeny,
		},
		{
			name: "trusted network forces allow",
			in:   aliceInput(netip.MustParseAddr("1.2.3.4"), uaChromeWin, "stranger", geoAU),
			edit: func(si *ScoreInput) { si.Trusted = true },
			min:  70, max: 100,
			signals: []string{SignalNewCountry, SignalNewDevice, SignalTrustedNetwork},
			force:   ForceAllow,
		},
		{
			name: "block beats trust",
			in:   known,
			edit: func(si *ScoreInput) { si.Trusted, si.BlockedNetwork = true, true },
			min:  0, max: 9,
			signals: []string{SignalBlockedNetwork, SignalTrustedNetwork},
			force:   ForceDeny,
		},
		{
			name: "cold start",
			in:   known,
			edit: func(si *ScoreInput) { si.UserLogins = 0; clear(si.Counts) },
			min:  ScoreAtEvenOdds, max: ScoreAtEvenOdds,
			signals:   []string{SignalNoHistory},
			noHistory: true,
		},
		{
			name: "cold start with velocity",
			in:   known,
			edit: func(si *ScoreInput) { si.UserLogins = 0; si.FailedPasswordsIP = 50 },
			min:  ScoreAtEvenOdds + ScorePerDecade, max: ScoreAtEvenOdds + ScorePerDecade,
			signals:   []string{SignalIPFailedManyUsers, SignalNoHistory},
			noHistory: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ft := fixtures[tt.ignoreDevice]()
			si := ft.input("alice", tt.in, tNow)
			if tt.edit != nil {
				tt.edit(&si)
			}
			opts := tt.opts
			opts.IgnoreDevice = tt.ignoreDevice
			r := Score(si, opts)
			t.Logf("log10 S = %.2f, score %d, signals %+v", r.LogScore, r.Score, r.Signals)
			if r.Score < tt.min || r.Score > tt.max {
				t.Errorf("score %d, want %d–%d", r.Score, tt.min, tt.max)
			}
			if got := signalNames(r.Signals); !slices.Equal(got, tt.signals) {
				t.Errorf("signals %q, want %q", got, tt.signals)
			}
			if r.Force != tt.force {
				t.Errorf("force %v, want %v", r.Force, tt.force)
			}
			if r.NoHistory != tt.noHistory {
				t.Errorf("NoHistory %v, want %v", r.NoHistory, tt.noHistory)
			}
			checkSignalOrder(t, r.Signals)
			checkNoIP(t, r.Signals, tt.in.IP)
		})
	}
}

// TestScoreVelocity checks that each velocity rule multiplies S by its
// factor exactly when its count reaches the threshold.
func TestScoreVelocity(t *testing.T) {
	ft := fixtures[false]()
	base := ft.input("alice", aliceInput(netip.MustParseAddr("1.2.3.4"), uaChromeWin, "stranger", geoAU), tNow)
	baseline := Score(base, Options{}).LogScore
	tests := []struct {
		name                 string
		opts                 Options
		user, ip, challenges int
		wantDelta            float64 // log10 of the product of factors
		signals              []string
	}{
		{"nothing", Options{}, 1, 1, 1, 0, nil},
		{"user burst at threshold", Options{}, DefaultFailedPasswordUserThreshold, 0, 0, 1, []string{SignalFailedPasswordBurst}},
		{"user burst below threshold", Options{}, DefaultFailedPasswordUserThreshold - 1, 0, 0, 0, nil},
		{"user rule disabled", Options{FailedPasswordUserThreshold: -1}, 100, 0, 0, 0, nil},
		{"custom user threshold", Options{FailedPasswordUserThreshold: 2}, 2, 0, 0, 1, []string{SignalFailedPasswordBurst}},
		{"stuffing IP", Options{}, 0, DefaultFailedPasswordIPThreshold, 0, 1, []string{SignalIPFailedManyUsers}},
		{"stuffing IP below threshold", Options{}, 0, DefaultFailedPasswordIPThreshold - 1, 0, 0, nil},
		{"failed challenges, custom factor", Options{FailedChallengeFactor: 100}, 0, 0, DefaultFailedChallengeThreshold, 2, []string{SignalRecentFailedChallenges}},
		{
			"all three, strongest first", Options{FailedPasswordIPFactor: 1000, FailedChallengeFactor: 100}, 9, 99, 9, 6,
			[]string{SignalIPFailedManyUsers, SignalRecentFailedChallenges, SignalFailedPasswordBurst},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			in.FailedPasswordsUser, in.FailedPasswordsIP, in.FailedChallengesUser = tt.user, tt.ip, tt.challenges
			r := Score(in, tt.opts)
			if d := r.LogScore - baseline; math.Abs(d-tt.wantDelta) > 1e-9 {
				t.Errorf("log10 S moved by %.3f, want %.3f", d, tt.wantDelta)
			}
			var got []string
			for _, s := range r.Signals {
				if s.Name != SignalNewCountry && s.Name != SignalNewDevice {
					got = append(got, s.Name)
				}
			}
			if !slices.Equal(got, tt.signals) {
				t.Errorf("velocity signals %q, want %q", got, tt.signals)
			}
			checkSignalOrder(t, r.Signals)
		})
	}
}

func signalNames(s []Signal) []string {
	var names []string
	for _, x := range s {
		names = append(names, x.Name)
	}
	return names
}

// checkSignalOrder asserts deny-forcing signals first, then non-increasing
// weight.
func checkSignalOrder(t *testing.T, s []Signal) {
	t.Helper()
	for i := 1; i < len(s); i++ {
		a, b := s[i-1], s[i]
		if !a.forcing() && b.forcing() {
			t.Errorf("forcing signal %s after %s", b.Name, a.Name)
		}
		if a.forcing() == b.forcing() && a.Weight < b.Weight {
			t.Errorf("signal %s (%.3f) before heavier %s (%.3f)", a.Name, a.Weight, b.Name, b.Weight)
		}
	}
}

var ipLike = regexp.MustCompile(`\d+\.\d+\.\d+|[0-9a-fA-F]*:[0-9a-fA-F]*:`)

func checkNoIP(t *testing.T, s []Signal, ip netip.Addr) {
	t.Helper()
	for _, x := range s {
		if ip.IsValid() && strings.Contains(x.Detail, ip.String()) || ipLike.MatchString(x.Detail) {
			t.Errorf("signal %s detail %q shows an address", x.Name, x.Detail)
		}
	}
}

func TestScoreSignalDetails(t *testing.T) {
	ft := fixtures[false]()
	in := aliceInput(netip.MustParseAddr("1.2.3.4"), uaFirefoxLinux, "stranger", geoAU)
	si := ft.input("alice", in, tNow)
	si.LastLogin = &Place{At: tNow.Add(-time.Hour), Lat: geoGB.Lat, Lon: geoGB.Lon, Country: "GB"}
	r := Score(si, Options{})
	want := map[string]string{
		SignalNewCountry:       "AU",
		SignalNewDevice:        "Firefox on Linux",
		SignalNewBrowser:       "Firefox 126",
		SignalNewOS:            "Linux",
		SignalImpossibleTravel: "GB to AU: 16996 km at 16996 km/h",
	}
	for _, s := range r.Signals {
		if s.Detail != want[s.Name] {
			t.Errorf("%s detail %q, want %q", s.Name, s.Detail, want[s.Name])
		}
		delete(want, s.Name)
	}
	if len(want) != 0 {
		t.Errorf("missing signals %v", want)
	}

	// A new network names the AS, never the prefix.
	asn := GeoInfo{Country: "GB", ASN: 64500, ASNOrg: "Example Telecom"}
	si = ft.input("alice", aliceInput(netip.MustParseAddr("81.2.70.1"), uaChromeWin, "stranger", asn), tNow)
	r = Score(si, Options{})
	if i := slices.IndexFunc(r.Signals, func(s Signal) bool { return s.Name == SignalNewNetwork }); i < 0 || r.Signals[i].Detail != "AS64500 Example Telecom" {
		t.Errorf("signals %+v, want new_network AS64500 Example Telecom", r.Signals)
	}
}

// TestScoreFormula checks Score against the formula worked by hand.
func TestScoreFormula(t *testing.T) {
	f := Features{levels: []Level{
		{LevelIPAddr, FeatureIP, WeightIPAddr, "a"},
		{LevelIPNet, FeatureIP, WeightIPNet, "n"},
		{LevelIPCountry, FeatureIP, WeightIPCountry, "c"},
		{LevelDeviceID, FeatureDevice, WeightDeviceID, "d"},
	}}
	base := ScoreInput{Features: f, UserLogins: 10, TenantLogins: 1000, TenantUsers: 50}
	// p(u|attack)/p(u|legit) = (1/50)/(10/1000) = 2
	prior := math.Log10(2)
	knownDevice := math.Log10((6.0 / 1200) / (5.0 / 10)) // p(x)/p(x|u) = ((5+1)/(1000+200)) / (5/10)
	tests := []struct {
		name   string
		counts map[string]LevelCounts
		want   float64
	}{
		{
			name: "new address in known network, known device",
			counts: map[string]LevelCounts{
				LevelIPAddr:    {UserCount: 0, TenantCount: 0, TenantDistinct: 500},
				LevelIPNet:     {UserCount: 10, TenantCount: 19, TenantDistinct: 100},
				LevelIPCountry: {UserCount: 10, TenantCount: 600, TenantDistinct: 10},
				LevelDeviceID:  {UserCount: 5, TenantCount: 5, TenantDistinct: 200},
			},
			// The penalty for the address, then p(x)/p(x|u) at the network.
			want: prior + math.Log10(4) + math.Log10((20.0/1100)/(10.0/10)) + knownDevice,
		},
		{
			name: "new network in the user's country",
			counts: map[string]LevelCounts{
				LevelIPAddr:    {TenantDistinct: 500},
				LevelIPNet:     {TenantDistinct: 100},
				LevelIPCountry: {UserCount: 10, TenantCount: 600, TenantDistinct: 10},
				LevelDeviceID:  {UserCount: 5, TenantCount: 5, TenantDistinct: 200},
			},
			// The penalty once, for the network (the address is new because
			// the network is), times its typicality (1/100)/(1/1100) = 11,
			// capped at 10;
			// the known country is forgeable: p(x|attack) = p(x|u), no
			// evidence either way.
			want: prior + math.Log10(4*10) + knownDevice,
		},
		{
			name: "new network that many users come from",
			counts: map[string]LevelCounts{
				LevelIPAddr:    {TenantDistinct: 500},
				LevelIPNet:     {TenantCount: 500, TenantDistinct: 100},
				LevelIPCountry: {UserCount: 10, TenantCount: 600, TenantDistinct: 10},
				LevelDeviceID:  {UserCount: 5, TenantCount: 5, TenantDistinct: 200},
			},
			// Typicality (1/100)/(501/1100) = 0.022 is floored at a tenth
			// of 1/penalty: a network much of the tenant uses lowers the
			// score tenfold at most.
			want: prior + knownDevice - 1,
		},
		{
			name: "everything unseen pays the penalty once per feature",
			counts: map[string]LevelCounts{
				LevelIPAddr:    {TenantDistinct: 500},
				LevelIPNet:     {TenantDistinct: 100},
				LevelIPCountry: {TenantCount: 3, TenantDistinct: 10},
			},
			// The IP's penalty still carries the new prefix's typicality
			// (capped at 10).
			want: prior + math.Log10(4*10) + math.Log10(4),
		},
		{
			name: "overcounted estimates are clamped",
			counts: map[string]LevelCounts{
				LevelIPAddr:    {UserCount: 99, TenantCount: 5000, TenantDistinct: 0},
				LevelIPNet:     {UserCount: 99, TenantCount: 5000, TenantDistinct: 0},
				LevelIPCountry: {UserCount: 99, TenantCount: 5000, TenantDistinct: 0},
				LevelDeviceID:  {UserCount: 99, TenantCount: 5000, TenantDistinct: 0},
			},
			want: prior, // p(x) and p(x|u) both 1
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base
			in.Counts = tt.counts
			r := Score(in, Options{PriorLogins: -1}) // the formula alone, without the prior
			if math.Abs(r.LogScore-tt.want) > 1e-12 {
				t.Errorf("LogScore = %.15f, want %.15f", r.LogScore, tt.want)
			}
			if r.Score != ScoreFromLog(tt.want) {
				t.Errorf("Score = %d, want %d", r.Score, ScoreFromLog(tt.want))
			}
		})
	}

	// With an ASN database the AS is a level between the prefix and the
	// country. A new prefix of the user's own AS costs the penalty once
	// (at the prefix), with the prefix's typicality; a new AS in the known
	// country costs it once more general, at the AS, which takes no
	// typicality of its own.
	asLevels := []Level{
		{LevelIPAddr, FeatureIP, WeightIPAddr, "a"},
		{LevelIPNet, FeatureIP, WeightIPNet, "n"},
		{LevelIPASN, FeatureIP, WeightIPASN, "AS64500"},
		{LevelIPCountry, FeatureIP, WeightIPCountry, "c"},
		{LevelDeviceID, FeatureDevice, WeightDeviceID, "d"},
	}
	in := base
	in.Features = Features{levels: asLevels}
	net := LevelCounts{TenantCount: 9, TenantDistinct: 100}
	// τ for the prefix: (1/M)/p(x) = (1/100)/((9+1)/(1000+100)) = 1.1
	typ := math.Log10((1.0 / 100) / (10.0 / 1100))
	in.Counts = map[string]LevelCounts{
		LevelIPAddr:    {TenantDistinct: 500},
		LevelIPNet:     net,
		LevelIPASN:     {UserCount: 10, TenantCount: 300, TenantDistinct: 20},
		LevelIPCountry: {UserCount: 10, TenantCount: 600, TenantDistinct: 10},
		LevelDeviceID:  {UserCount: 5, TenantCount: 5, TenantDistinct: 200},
	}
	// At the known AS: p(x)/p(x|u) = ((300+1)/(1000+20)) / (10/10), but a
	// targeted attacker in the user's ISP has at least TargetedShare of
	// the user's share of it when a device id can tell them apart.
	knownAS := math.Log10(math.Max(301.0/1020, DefaultTargetedShare))
	if got, want := Score(in, Options{PriorLogins: -1}).LogScore, prior+math.Log10(4)+typ+knownAS+knownDevice; math.Abs(got-want) > 1e-12 {
		t.Errorf("new prefix in the user's AS: LogScore = %.15f, want %.15f", got, want)
	}
	in.Counts[LevelIPASN] = LevelCounts{TenantCount: 300, TenantDistinct: 20}
	// Back-off to the country, which an attacker forges: no evidence there.
	if got, want := Score(in, Options{PriorLogins: -1}).LogScore, prior+math.Log10(4)+typ+knownDevice; math.Abs(got-want) > 1e-12 {
		t.Errorf("new AS: LogScore = %.15f, want %.15f", got, want)
	}
}

func TestScoreUnseenPenaltyOption(t *testing.T) {
	f := Features{levels: []Level{{LevelDeviceID, FeatureDevice, WeightDeviceID, "d"}}}
	in := ScoreInput{Features: f, UserLogins: 10, TenantLogins: 500, TenantUsers: 50}
	for _, penalty := range []float64{0, 4, 10} {
		want := math.Log10(cmpOr(penalty, DefaultUnseenPenalty))
		if got := Score(in, Options{UnseenPenalty: penalty, PriorLogins: -1}).LogScore; math.Abs(got-want) > 1e-12 {
			t.Errorf("penalty %v: LogScore = %v, want %v", penalty, got, want)
		}
	}
}

func cmpOr(v, def float64) float64 {
	if v == 0 {
		return def
	}
	return v
}

// TestScoreMonotonicInNovelty: each step away from the user's habits must
// not lower the score.
func TestScoreMonotonicInNovelty(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		ft := fixtures[ignore]()
		dev := "alice-laptop"
		if ignore {
			dev = ""
		}
		steps := []Input{
			aliceInput(aliceV4, uaChromeWin, dev, geoGB),
			aliceInput(netip.MustParseAddr("81.2.69.200"), uaChromeWin, dev, geoGB),
			aliceInput(netip.MustParseAddr("5.6.7.8"), uaChromeWin, dev, geoGB),
			aliceInput(netip.MustParseAddr("1.2.3.4"), uaChromeWin, dev, geoAU),
			aliceInput(netip.MustParseAddr("1.2.3.4"), uaFirefoxLinux, dev, geoAU),
		}
		prev := math.Inf(-1)
		for i, in := range steps {
			r := Score(ft.input("alice", in, tNow), Options{IgnoreDevice: ignore})
			if r.LogScore < prev {
				t.Errorf("ignoreDevice=%v step %d: log10 S %.3f below previous %.3f", ignore, i, r.LogScore, prev)
			}
			prev = r.LogScore
		}
	}
}

func TestScoreFromLog(t *testing.T) {
	tests := []struct {
		log10S float64
		want   int
	}{
		{math.Inf(-1), 0},
		{-10, 0},
		{-3, 0},
		{-2.5, 0},
		{-2, 10},
		{-1, 30},
		{0, ScoreAtEvenOdds},
		{0, DefaultChallengeThreshold}, // the default challenges at even odds
		{0.5, 60},
		{1, 70},
		{2.5, 100},
		{40, 100},
		{math.Inf(1), 100},
		{math.NaN(), 100},
	}
	for _, tt := range tests {
		if got := ScoreFromLog(tt.log10S); got != tt.want {
			t.Errorf("ScoreFromLog(%v) = %d, want %d", tt.log10S, got, tt.want)
		}
	}
	prev := -1
	for x := -6.0; x <= 3; x += 0.01 {
		s := ScoreFromLog(x)
		if s < prev || s < 0 || s > 100 {
			t.Fatalf("ScoreFromLog(%.2f) = %d after %d: not monotonic within 0–100", x, s, prev)
		}
		prev = s
	}
}

func TestScoreLevel(t *testing.T) {
	tests := []struct {
		score, challenge, deny int
		want                   string
	}{
		{0, 50, 101, RiskLow},
		{49, 50, 101, RiskLow},
		{50, 50, 101, RiskMedium},
		{100, 50, 101, RiskMedium},
		{90, 50, 90, RiskHigh},
		{100, 50, 90, RiskHigh},
		{10, 0, 101, RiskMedium},
	}
	for _, tt := range tests {
		if got := ScoreLevel(tt.score, tt.challenge, tt.deny); got != tt.want {
			t.Errorf("ScoreLevel(%d, %d, %d) = %q, want %q", tt.score, tt.challenge, tt.deny, got, tt.want)
		}
	}
}

func TestDistanceKm(t *testing.T) {
	tests := []struct {
		name                   string
		lat1, lon1, lat2, lon2 float64
		want                   float64
	}{
		{"same point", 51.5, -0.12, 51.5, -0.12, 0},
		{"London–Paris", 51.5074, -0.1278, 48.8566, 2.3522, 344},
		{"London–Sydney", 51.5074, -0.1278, -33.8688, 151.2093, 16994},
		{"antipodes", 0, 0, 0, 180, math.Pi * earthRadiusKm},
	}
	for _, tt := range tests {
		if got := DistanceKm(tt.lat1, tt.lon1, tt.lat2, tt.lon2); math.Abs(got-tt.want) > 2 {
			t.Errorf("%s: DistanceKm = %.1f, want %.0f", tt.name, got, tt.want)
		}
	}
}

func TestCheckTravel(t *testing.T) {
	o := Options{}.withDefaults()
	london := Place{At: t0, Lat: 51.5074, Lon: -0.1278}
	at := func(d time.Duration, lat, lon float64) Place { return Place{At: t0.Add(d), Lat: lat, Lon: lon} }
	tests := []struct {
		name string
		now  Place
		want bool
	}{
		{"Paris an hour later (344 km, under the minimum)", at(time.Hour, 48.8566, 2.3522), false},
		{"Rome an hour later (1,430 km/h)", at(time.Hour, 41.9, 12.5), true},
		{"Rome three hours later", at(3*time.Hour, 41.9, 12.5), false},
		{"Sydney at once", at(0, -33.87, 151.21), true},
		{"Sydney a minute earlier (clock skew)", at(-time.Minute, -33.87, 151.21), true},
		{"Sydney a day later", at(24*time.Hour, -33.87, 151.21), false},
	}
	for _, tt := range tests {
		if got := checkTravel(london, tt.now, o).impossible; got != tt.want {
			t.Errorf("%s: impossible = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// In a tenant of one user every value is as common as the user's own, so
// the formula alone cannot tell a familiar login from a new one; the prior
// population can.
func TestScoreYoungTenant(t *testing.T) {
	home := netip.MustParseAddr("192.0.2.10")
	ua := "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	known := Extract(Input{IP: home, UserAgent: ua, DeviceID: "laptop", Geo: GeoInfo{Country: "AU"}}, Options{})
	counts := map[string]LevelCounts{}
	for _, l := range known.Levels() {
		counts[l.Name] = LevelCounts{UserCount: 2, TenantCount: 2, TenantDistinct: 1}
	}
	base := ScoreInput{Counts: counts, UserLogins: 2, TenantLogins: 2, TenantUsers: 1}

	in := base
	in.Features = known
	if r := Score(in, Options{}); r.Score >= DefaultChallengeThreshold/2 {
		t.Errorf("familiar login in a young tenant scores %d, want well under %d", r.Score, DefaultChallengeThreshold)
	}
	if r := Score(in, Options{PriorLogins: -1}); r.Score < DefaultChallengeThreshold {
		t.Errorf("without the prior the familiar login scores %d: the test no longer shows what the prior is for", r.Score)
	}
	in.Features = Extract(Input{IP: netip.MustParseAddr("198.51.100.7"), UserAgent: ua, DeviceID: "stranger", Geo: GeoInfo{Country: "GB"}}, Options{})
	in.Counts = map[string]LevelCounts{}
	for _, l := range in.Features.Levels() {
		if l.Feature == FeatureUA {
			in.Counts[l.Name] = LevelCounts{UserCount: 2, TenantCount: 2, TenantDistinct: 1}
		} else {
			in.Counts[l.Name] = LevelCounts{TenantDistinct: 1}
		}
	}
	r := Score(in, Options{})
	if r.Score < 70 {
		t.Errorf("new country and device in a young tenant scores %d, want >= 70", r.Score)
	}
	names := signalNames(r.Signals)
	if !slices.Contains(names, SignalNewCountry) || !slices.Contains(names, SignalNewDevice) {
		t.Errorf("signals = %v, want new_country and new_device", names)
	}
}

// TestScoreTargetedAboveFamiliar: without device ids, a targeted attacker
// (the victim's country and exact user agent, from a network the victim
// never used) must score above every ordinary login (a new address in the
// user's own network) of every user, whether the user logs in often or
// rarely, from the tenant's main country or a rare one, with a common
// browser or a rare one. The reference code's weighted sums failed this:
// per-user constants moved whole users by more than the network did.
func TestScoreTargetedAboveFamiliar(t *testing.T) {
	opts := Options{IgnoreDevice: true}
	ft := newFakeTenant(opts)
	ft.populate(1, 2000, 10, t0)
	geoIE := GeoInfo{Country: "IE", Lat: 53.3, Lon: -6.26, HasLocation: true}
	users := []struct {
		id     string
		logins int
		net    [3]byte
		ua     string
		geo    GeoInfo
	}{
		{"frequent-common", 60, [3]byte{81, 2, 69}, uaChromeWin, geoGB},
		{"rare-common", 3, [3]byte{81, 2, 70}, uaChromeWin, geoGB},
		{"frequent-rare", 60, [3]byte{87, 32, 1}, uaFirefoxLinux, geoIE},
		{"rare-rare", 3, [3]byte{87, 32, 2}, uaFirefoxLinux, geoIE},
	}
	addr := func(net [3]byte, host byte) netip.Addr { return netip.AddrFrom4([4]byte{net[0], net[1], net[2], host}) }
	for _, u := range users {
		for i := range u.logins {
			ft.learn(u.id, Input{IP: addr(u.net, byte(10+i%3)), UserAgent: u.ua, Geo: u.geo}, t0.Add(time.Duration(i)*time.Hour))
		}
	}
	highestFamiliar, lowestTargeted := math.Inf(-1), math.Inf(1)
	for _, u := range users {
		familiar := ft.score(u.id, Input{IP: addr(u.net, 200), UserAgent: u.ua, Geo: u.geo}, tNow)
		targeted := ft.score(u.id, Input{IP: addr([3]byte{u.net[0], u.net[1] + 100, u.net[2]}, 7), UserAgent: u.ua, Geo: u.geo}, tNow)
		t.Logf("%s: new address in own network %.2f, targeted %.2f", u.id, familiar.LogScore, targeted.LogScore)
		highestFamiliar = math.Max(highestFamiliar, familiar.LogScore)
		lowestTargeted = math.Min(lowestTargeted, targeted.LogScore)
		if targeted.Score < DefaultChallengeThreshold || familiar.Score >= DefaultChallengeThreshold {
			t.Errorf("%s: targeted scores %d, ordinary login %d; want the threshold %d between them",
				u.id, targeted.Score, familiar.Score, DefaultChallengeThreshold)
		}
	}
	if highestFamiliar >= lowestTargeted {
		t.Errorf("an ordinary login (log10 S %.2f) scores at least as high as a targeted attack (%.2f)", highestFamiliar, lowestTargeted)
	}

	// How rare the copied user agent is in the tenant makes no difference.
	si := ft.input("rare-rare", Input{IP: netip.MustParseAddr("87.132.2.7"), UserAgent: uaFirefoxLinux, Geo: geoIE}, tNow)
	before := Score(si, opts).LogScore
	c := si.Counts[LevelUAFull]
	c.TenantCount = si.TenantLogins / 2
	si.Counts[LevelUAFull] = c
	if after := Score(si, opts).LogScore; math.Abs(after-before) > 1e-12 {
		t.Errorf("a copied user agent's tenant count moved log10 S from %.3f to %.3f", before, after)
	}
}

// TestMissingMass: the cost of a value new to the user follows his own
// rate of new values at that level (Good–Turing), smoothed toward the
// prior 1/UnseenPenalty.
func TestMissingMass(t *testing.T) {
	f := Features{levels: []Level{{LevelDeviceID, FeatureDevice, WeightDeviceID, "d"}}}
	// p(u|attack)/p(u|legit) = (1/50)/(40/2000) = 1
	in := ScoreInput{Features: f, UserLogins: 40, TenantLogins: 2000, TenantUsers: 50}
	cost := func(distinct int64) float64 {
		in.Counts = map[string]LevelCounts{LevelDeviceID: {UserDistinct: distinct}}
		return Score(in, Options{PriorLogins: -1}).LogScore
	}
	// One device in 40 logins: m = (1 + 2/4)/(40 + 2), a new one costs 28.
	if got, want := cost(1), math.Log10(42/1.5); math.Abs(got-want) > 1e-12 {
		t.Errorf("one device: log10 S = %v, want %v", got, want)
	}
	// A new value on 30 of 40 logins: m = 30.5/42, it costs 1.4.
	if got, want := cost(30), math.Log10(42/30.5); math.Abs(got-want) > 1e-12 {
		t.Errorf("hopping user: log10 S = %v, want %v", got, want)
	}
	// Unknown (0): the prior, the fixed penalty.
	if got, want := cost(0), math.Log10(DefaultUnseenPenalty); math.Abs(got-want) > 1e-12 {
		t.Errorf("unknown: log10 S = %v, want %v", got, want)
	}
	// Never above one: a new value cannot make the login likelier.
	if got := cost(400); got < 0 {
		t.Errorf("overcounted: log10 S = %v, want ≥ 0", got)
	}
}

// TestScoreSharedValueNamed: a familiar address that the tenant's logins
// use more than the user's own (an office NAT he logs in from one time in
// five) raises the score by Freeman's ratio with nothing new to name; it is
// named shared_ip, weighted by its term. An address of his own is not.
func TestScoreSharedValueNamed(t *testing.T) {
	opts := Options{IgnoreDevice: true}
	ft := newFakeTenant(opts)
	office, home := netip.MustParseAddr("81.2.70.10"), netip.MustParseAddr("81.2.99.7")
	at := func(ip netip.Addr) Input { return Input{IP: ip, UserAgent: uaChromeWin, Geo: geoGB} }
	for u := range 10 {
		for i := range 20 {
			ft.learn(fmt.Sprintf("colleague-%d", u), at(office), t0.Add(time.Duration(i)*time.Minute))
		}
	}
	ft.learn("olga", at(office), t0)
	for i := range 4 {
		ft.learn("olga", at(home), t0.Add(time.Duration(i+1)*time.Hour))
	}
	r := ft.score("olga", at(office), t0.Add(time.Hour))
	if len(r.Signals) != 1 || r.Signals[0].Name != SignalSharedIP || r.Signals[0].Detail != "GB" || r.Signals[0].Weight <= 0 {
		t.Errorf("office login: score %d, signals %+v, want shared_ip GB alone", r.Score, r.Signals)
	}
	if r := ft.score("olga", at(home), t0.Add(time.Hour)); len(r.Signals) != 0 {
		t.Errorf("home login: score %d, signals %+v, want none", r.Score, r.Signals)
	}
}
