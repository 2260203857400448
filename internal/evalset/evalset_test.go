package evalset

import (
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/risk"
)

func TestGenerateDeterministic(t *testing.T) {
	tests := []struct {
		name      string
		a, b      Options
		wantEqual bool
	}{
		{"same seed", Options{Seed: 7, Users: 60}, Options{Seed: 7, Users: 60}, true},
		{"other seed", Options{Seed: 7, Users: 60}, Options{Seed: 8, Users: 60}, false},
		{"other length", Options{Seed: 7, Users: 60, Days: 90}, Options{Seed: 7, Users: 60, Days: 91}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := Generate(tt.a), Generate(tt.b)
			if got := reflect.DeepEqual(a.Logins, b.Logins); got != tt.wantEqual {
				t.Errorf("logins equal = %v, want %v", got, tt.wantEqual)
			}
		})
	}
}

func TestGenerateUserIndependentOfCount(t *testing.T) {
	// Each user draws from their own stream: adding users does not change
	// the first ones.
	small, large := Generate(Options{Seed: 3, Users: 20}), Generate(Options{Seed: 3, Users: 40})
	of := func(s *Set, user string) []Login {
		var out []Login
		for _, l := range s.Logins {
			if l.User == user {
				out = append(out, l)
			}
		}
		return out
	}
	for _, u := range small.Users {
		if !reflect.DeepEqual(of(small, u), of(large, u)) {
			t.Fatalf("user %s differs between 20 and 40 users", u)
		}
	}
}

func TestGenerateLabelsAndOrder(t *testing.T) {
	tests := []struct {
		name string
		opt  Options
	}{
		{"defaults but few users", Options{Seed: 1, Users: 150}},
		{"two attacks each", Options{Seed: 2, Users: 80, Days: 60, AttacksPerUser: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Generate(tt.opt)
			if len(s.Users) != tt.opt.Users {
				t.Fatalf("users = %d, want %d", len(s.Users), tt.opt.Users)
			}
			start, end := s.Options.Start, s.End()
			first := map[string]time.Time{}
			active := map[string]bool{}
			counts := map[Kind]int{}
			for i, l := range s.Logins {
				counts[l.Kind]++
				if i > 0 && l.At.Before(s.Logins[i-1].At) {
					t.Fatalf("login %d at %s before login %d at %s", i, l.At, i-1, s.Logins[i-1].At)
				}
				if l.At.Before(start) || !l.At.Before(end) {
					t.Fatalf("login %d at %s outside [%s, %s)", i, l.At, start, end)
				}
				if !l.IP.IsValid() || l.UserAgent == "" || l.DeviceID == "" {
					t.Fatalf("login %d incomplete: %+v", i, l)
				}
				if l.Kind == Legit {
					active[l.User] = true
					if _, ok := first[l.User]; !ok {
						first[l.User] = l.At
					}
					if l.Context == NoContext {
						t.Fatalf("legitimate login %d has no context", i)
					}
				} else {
					f, ok := first[l.User]
					if !ok || !l.At.After(f) {
						t.Fatalf("attack %d on %s at %s precedes the user's first login", i, l.User, l.At)
					}
				}
			}
			for _, k := range Attackers {
				if want := len(active) * s.Options.AttacksPerUser; counts[k] != want {
					t.Errorf("%s attempts = %d, want %d (active users × attacks per user)", k, counts[k], want)
				}
			}
			if counts[Legit] < 2*len(active) {
				t.Errorf("only %d legitimate logins for %d active users", counts[Legit], len(active))
			}
			if got := s.Count(Legit); got != counts[Legit] {
				t.Errorf("Count(Legit) = %d, want %d", got, counts[Legit])
			}
		})
	}
}

func TestHistoryLengthsSpan(t *testing.T) {
	s := Generate(Options{Seed: 1, Users: 500})
	per := map[string]int{}
	for _, l := range s.Logins {
		if l.Kind == Legit {
			per[l.User]++
		}
	}
	lo, hi := 1<<30, 0
	for _, n := range per {
		lo, hi = min(lo, n), max(hi, n)
	}
	if lo > 2 || hi <= 100 {
		t.Errorf("logins per user span %d–%d, want from 1 or 2 to over 100", lo, hi)
	}
}

func TestGeoIPResolvesEveryLogin(t *testing.T) {
	s := Generate(Options{Seed: 5, Users: 120})
	for _, withASN := range []bool{false, true} {
		geo, err := s.World.OpenGeoIP(withASN)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range s.Logins {
			g := geo.Lookup(l.IP)
			if g.Country == "" || s.World.Country(g.Country) == nil {
				t.Fatalf("%s (%s %s) resolves to country %q", l.IP, l.Kind, l.Context, g.Country)
			}
			if withASN != (g.ASN != 0) {
				t.Fatalf("%s: ASN %d with ASN database %v", l.IP, g.ASN, withASN)
			}
		}
		geo.Close()
	}
}

func TestAttackersKnowWhatTheyShould(t *testing.T) {
	s := Generate(Options{Seed: 9, Users: 200})
	geo, err := s.World.OpenGeoIP(true)
	if err != nil {
		t.Fatal(err)
	}
	defer geo.Close()
	home := map[string]string{}  // user → country of the first home login
	devices := map[string]bool{} // every legitimate device id
	vpnASN := map[uint32]bool{}  // the VPN providers' ASNs
	for _, c := range s.World.Countries {
		for _, v := range c.VPN {
			vpnASN[v.ASN] = true
		}
	}
	for _, l := range s.Logins {
		if l.Kind == Legit {
			devices[l.DeviceID] = true
			if _, ok := home[l.User]; !ok && (l.Context == Home || l.Context == Home6) {
				home[l.User] = geo.Lookup(l.IP).Country
			}
		}
	}
	for _, l := range s.Logins {
		if l.Kind == Legit {
			continue
		}
		if devices[l.DeviceID] {
			t.Fatalf("%s attacker reuses a legitimate device id", l.Kind)
		}
		g := geo.Lookup(l.IP)
		hc, known := home[l.User]
		switch l.Kind {
		case VPNAttacker:
			if !vpnASN[g.ASN] {
				t.Fatalf("vpn attacker from AS%d (%s), not a VPN provider", g.ASN, g.ASNOrg)
			}
			if known && g.Country != hc {
				t.Fatalf("vpn attacker in %s, victim lives in %s", g.Country, hc)
			}
		case Targeted:
			if known && g.Country != hc {
				t.Fatalf("targeted attacker in %s, victim lives in %s", g.Country, hc)
			}
			if vpnASN[g.ASN] {
				t.Fatalf("targeted attacker from a VPN (AS%d)", g.ASN)
			}
		}
	}
}

func TestTargetedKnowsBrowserFamilyAndVersion(t *testing.T) {
	r := newTestRand(1)
	at := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	for range 200 {
		for _, d := range newDevices(r) {
			own := risk.ParseUserAgent(d.userAgent(at))
			guess := risk.ParseUserAgent(d.guessedUserAgent(at))
			if own.Browser() != guess.Browser() {
				t.Fatalf("device %v/%v: guessed browser %q, own %q", d.platform, d.browser, guess.Browser(), own.Browser())
			}
		}
	}
}

func TestBrowserVersions(t *testing.T) {
	tests := []struct {
		b            Browser
		at           time.Time
		major, minor int
	}{
		{Chrome, releaseEpoch, 133, 0},
		{Chrome, releaseEpoch.Add(releaseEvery), 134, 0},
		{Chrome, releaseEpoch.Add(-time.Hour), 132, 0},
		{Firefox, releaseEpoch.Add(3 * releaseEvery), 138, 0},
		{Safari, time.Date(2025, 9, 15, 0, 0, 0, 0, time.UTC), 18, 7},
		{Safari, time.Date(2025, 9, 16, 0, 0, 0, 0, time.UTC), 19, 0},
		{Safari, time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC), 19, 1},
	}
	for _, tt := range tests {
		major, minor := browserVersion(tt.b, tt.at)
		if major != tt.major || minor != tt.minor {
			t.Errorf("browserVersion(%v, %s) = %d.%d, want %d.%d", tt.b, tt.at, major, minor, tt.major, tt.minor)
		}
	}
}

func TestUserAgentsParse(t *testing.T) {
	at := releaseEpoch
	tests := []struct {
		p          Platform
		b          Browser
		browser    string
		os, device string
	}{
		{Windows, Chrome, "Chrome 133", "Windows 10", risk.DeviceDesktop},
		{Windows, Edge, "Edge 133", "Windows 10", risk.DeviceDesktop},
		{Windows, Firefox, "Firefox 135", "Windows 10", risk.DeviceDesktop},
		{Mac, Safari, "Safari 18", "Mac OS X 10", risk.DeviceDesktop},
		{Linux, Chrome, "Chrome 133", "Linux", risk.DeviceDesktop},
		{IPhone, Safari, "Mobile Safari 18", "iOS 18", risk.DeviceMobile},
		{IPhone, Chrome, "Chrome Mobile iOS 133", "iOS 18", risk.DeviceMobile},
		{Android, Chrome, "Chrome Mobile 133", "Android 10", risk.DeviceMobile},
		{Android, Firefox, "Firefox Mobile 135", "Android 14", risk.DeviceMobile},
	}
	for _, tt := range tests {
		ua := risk.ParseUserAgent(userAgent(tt.p, tt.b, installed(tt.p, tt.b, at, 0, 14)))
		if ua.Browser() != tt.browser || ua.OS() != tt.os || ua.DeviceType != tt.device {
			t.Errorf("%v/%v parses as %q, %q, %q; want %q, %q, %q", tt.p, tt.b, ua.Browser(), ua.OS(), ua.DeviceType, tt.browser, tt.os, tt.device)
		}
	}
}

func TestWorldNetworksDisjoint(t *testing.T) {
	w := NewWorld()
	var blocks []netip.Prefix
	for _, c := range w.Countries {
		for _, n := range append(append([]*Network{c.Business, c.Hosting}, c.Residential...), c.Mobile...) {
			blocks = append(blocks, n.V4)
			if n.V6.IsValid() {
				blocks = append(blocks, n.V6)
			}
		}
		for _, v := range c.VPN {
			if !c.Hosting.V4.Contains(v.V4.Addr()) {
				t.Errorf("VPN exit %s outside %s hosting %s", v.V4, c.Code, c.Hosting.V4)
			}
		}
	}
	for i, a := range blocks {
		for _, b := range blocks[i+1:] {
			if a.Overlaps(b) {
				t.Fatalf("%s overlaps %s", a, b)
			}
		}
	}
}

func newTestRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0)) }
