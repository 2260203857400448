package risk

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"
)

// fakeTenant keeps exact counts of learned logins in memory, the way the
// engine's store does in Redis (minus the hashing), so tests score logins
// against a realistic history.
type fakeTenant struct {
	opts     Options
	logins   int64
	users    map[string]int64            // user → n_u
	tenant   map[string]map[string]int64 // level → value → count
	user     map[string]map[string]int64 // user+"\x00"+level → value → count
	lastSeen map[string]*Place           // user → last place
}

func newFakeTenant(opts Options) *fakeTenant {
	return &fakeTenant{
		opts:     opts,
		users:    map[string]int64{},
		tenant:   map[string]map[string]int64{},
		user:     map[string]map[string]int64{},
		lastSeen: map[string]*Place{},
	}
}

// learn records a login as allowed.
func (t *fakeTenant) learn(uid string, in Input, at time.Time) {
	f := Extract(in, t.opts)
	t.logins++
	t.users[uid]++
	for _, l := range f.Levels() {
		if t.tenant[l.Name] == nil {
			t.tenant[l.Name] = map[string]int64{}
		}
		t.tenant[l.Name][l.Value]++
		k := uid + "\x00" + l.Name
		if t.user[k] == nil {
			t.user[k] = map[string]int64{}
		}
		t.user[k][l.Value]++
	}
	if p := f.Place(at); p != nil {
		t.lastSeen[uid] = p
	}
}

// input builds the ScoreInput for a login attempt by uid.
func (t *fakeTenant) input(uid string, in Input, now time.Time) ScoreInput {
	f := Extract(in, t.opts)
	si := ScoreInput{
		Features:     f,
		Counts:       map[string]LevelCounts{},
		UserLogins:   t.users[uid],
		TenantLogins: t.logins,
		TenantUsers:  int64(len(t.users)),
		LastLogin:    t.lastSeen[uid],
		Now:          now,
	}
	for _, l := range f.Levels() {
		si.Counts[l.Name] = LevelCounts{
			UserCount:      t.user[uid+"\x00"+l.Name][l.Value],
			TenantCount:    t.tenant[l.Name][l.Value],
			TenantDistinct: int64(len(t.tenant[l.Name])),
		}
	}
	return si
}

func (t *fakeTenant) score(uid string, in Input, now time.Time) Result {
	return Score(t.input(uid, in, now), t.opts)
}

// Common user agents of the simulated population, most common first.
var testUAs = []string{
	uaChromeWin,
	uaIPhone,
	uaChromeAndroid,
	uaSafariMac,
	uaFirefoxWin,
	uaEdgeWin,
	uaChromeMac,
	uaFirefoxLinux,
}

const (
	uaChromeWin     = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36"
	uaChromeWin126  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	uaIPhone        = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	uaChromeAndroid = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Mobile Safari/537.36"
	uaSafariMac     = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
	uaFirefoxWin    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:126.0) Gecko/20100101 Firefox/126.0"
	uaEdgeWin       = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 Edg/125.0.0.0"
	uaChromeMac     = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36"
	uaFirefoxLinux  = "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"
	uaIPad          = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	uaGooglebot     = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
	uaAndroidTablet = "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36"
	uaCurl          = "curl/8.5.0"
)

// Countries of the simulated population, with the coordinates logins there
// get. Weighted so the tenant is mostly British, as a national service is.
var testCountries = []struct {
	cc       string
	lat, lon float64
	weight   int
}{
	{"GB", 51.5, -0.12, 70},
	{"US", 40.7, -74.0, 10},
	{"DE", 52.5, 13.4, 8},
	{"FR", 48.9, 2.35, 6},
	{"IE", 53.3, -6.26, 6},
}

// populate fills the tenant with users that each log in loginsEach times
// from their own home /24 in their country (a few from a second address in
// it), with one user agent and one device. Deterministic for a seed.
func (t *fakeTenant) populate(seed uint64, users, loginsEach int, start time.Time) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	total := 0
	for _, c := range testCountries {
		total += c.weight
	}
	for u := range users {
		pick := rng.IntN(total)
		ci := 0
		for ; pick >= testCountries[ci].weight; ci++ {
			pick -= testCountries[ci].weight
		}
		c := testCountries[ci]
		ua := testUAs[min(rng.IntN(len(testUAs)), rng.IntN(len(testUAs)))] // skewed to the front
		net := [4]byte{byte(10 + u>>16), byte(u >> 8), byte(u), 0}
		uid := fmt.Sprintf("pop-%d", u)
		for i := range loginsEach {
			host := byte(1 + rng.IntN(3))
			ip := netip.AddrFrom4([4]byte{net[0], net[1], net[2], host})
			t.learn(uid, Input{
				IP: ip, UserAgent: ua, DeviceID: "dev-" + uid,
				Geo: GeoInfo{Country: c.cc, Lat: c.lat, Lon: c.lon, HasLocation: true},
			}, start.Add(time.Duration(i)*time.Hour))
		}
	}
}
