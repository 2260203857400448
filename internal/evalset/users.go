package evalset

import (
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
)

const day = 24 * time.Hour

// Habits of the generated users. They are constants rather than options:
// changing one changes what the evaluation measures, so published tables
// stay reproducible from a seed alone.
const (
	// Login rates (logins per day) are log-normal: the median user logs
	// in every medianGap, and rateSigma spreads the rates so that a
	// 180-day set has users with one or two logins, a typical user with
	// about four, one in twenty with more than 40 and one in a hundred
	// with over a hundred (capped at maxRate). The mean, about ten logins
	// per user, is close to the 9.5 of the service Wiefling et al.
	// measured (3.3 million users, 31.3 million logins).
	medianGap = 45 * day
	rateSigma = 1.4
	maxRate   = 1.5
	// newUserShare of the users sign up during the period instead of
	// before it.
	newUserShare = 0.3
	// dualStackShare of homes have IPv6; dual-stack browsers then use it
	// for ipv6Share of home logins.
	dualStackShare = 0.45
	ipv6Share      = 0.9
	// A home's IPv4 lease lasts minLease to maxLease (log-uniform per
	// home, exponential per lease); a new lease lands anywhere in the
	// home's DHCP scope, a block of /16 to /24 of its ISP (per home).
	minLease = 3 * day
	maxLease = 30 * day
	// replaceEvery is the mean life of a device: a replaced device comes
	// back with a new id and an up-to-date browser of the same kind.
	replaceEvery = 540 * day
	// workShare of the users log in from an employer's network on
	// weekdays.
	workShare = 0.55
	// travellerShare of the users travel abroad, tripsPerYear times a year
	// on average, for 2 to 14 days.
	travellerShare = 0.6
	tripsPerYear   = 2.0
	// roamingShare of a traveller's phone logins go through the home
	// carrier (roaming), the rest through hotel or café Wi-Fi.
	roamingShare = 0.3
	// laggardShare of the devices install browser updates 10 to 60 days
	// late; the others within 10 days.
	laggardShare = 0.15
	// employers is the number of /24s of a country's business ISP that
	// employers use; a few large employers hold many of the users.
	employers = 250
)

// user is one legitimate user's habits and the state they carry between
// logins (the home's current DHCP address).
type user struct {
	id      string
	country *Country
	rate    float64   // logins per day
	join    time.Time // first possible login

	isp       *Network
	scope4    netip.Prefix   // the block of the ISP the home's leases come from
	lease     float64        // mean lease in days
	home4     netip.Prefix   // the home's current /24
	host4     byte           // the home's current address in it
	used4     []netip.Prefix // the /24s the home has had
	nextChurn time.Time
	home6     netip.Prefix // the home's /64; invalid when IPv4 only
	carrier   *Network
	work      netip.Prefix // the employer's /24; invalid when none
	egress    []byte       // the employer's NAT addresses in it
	pWork     float64      // share of weekday logins from work
	pMobile   float64      // share of other logins on the carrier
	devices   []*device
	trips     []trip
}

// device is one of a user's browsers.
type device struct {
	id       string
	platform Platform
	browser  Browser
	lag      time.Duration // how long after a release it updates
	android  int           // Android version (Firefox reveals it)
	weight   float64       // share of the home logins
	portable bool          // travels with the user
	iidSeed  uint64        // derives the daily IPv6 privacy addresses
	replace  time.Time     // when the device is replaced
}

func (d *device) phone() bool { return d.platform == IPhone || d.platform == Android }
func (d *device) computer() bool {
	return d.platform == Windows || d.platform == Mac || d.platform == Linux
}

// userAgent is the device's User-Agent header at time t.
func (d *device) userAgent(t time.Time) string {
	return userAgent(d.platform, d.browser, installed(d.platform, d.browser, t, d.lag, d.android))
}

// guessedUserAgent is what a targeted attacker who knows the device's
// browser family and major version (as a phishing page or a leaked login
// notification reveals it) sends at time t. The attacker cannot see the
// OS of a desktop browser and guesses the commonest one (Windows, or macOS
// for Safari); a mobile browser family implies its OS (Mobile Safari runs
// on iOS of the same version, Chrome Mobile on Android). Minor versions
// the attacker does not know are the latest of the major.
func (d *device) guessedUserAgent(t time.Time) string {
	v := installed(d.platform, d.browser, t, d.lag, d.android)
	p := d.platform
	switch p {
	case Windows, Mac, Linux, IPad:
		p = Windows
		if d.browser == Safari {
			p = Mac
		}
	case Android:
		v.osMajor = 14
	}
	if d.browser == Safari {
		v.minor = latestMinor(v.major, t)
	}
	if p == IPhone {
		v.osMajor, v.osMinor = v.major, latestMinor(v.major, t)
		if d.browser != Safari {
			v.osMajor, v.osMinor = browserVersion(Safari, t)
		}
	}
	return userAgent(p, d.browser, v)
}

// trip is a stay abroad with the hotel network it uses.
type trip struct {
	from, to time.Time
	country  *Country
	hotel    netip.Addr
}

func newUser(r *rand.Rand, w *World, home []weighted[*Country], i int, start, end time.Time) *user {
	c := pick(r, home)
	u := &user{
		id:      fmt.Sprintf("user%05d", i),
		country: c,
		rate:    min(maxRate, math.Exp(r.NormFloat64()*rateSigma)*float64(day)/float64(medianGap)),
		join:    start,
	}
	period := end.Sub(start)
	if r.Float64() < newUserShare {
		u.join = start.Add(time.Duration(r.Int64N(int64(period))))
	}
	isp := c.Residential[pickIndex(r, ispShare)]
	u.isp = isp
	u.home4 = randomSlash24(r, isp.V4)
	u.scope4 = netip.PrefixFrom(u.home4.Addr(), 16+2*r.IntN(5)).Masked()
	u.used4 = []netip.Prefix{u.home4}
	u.host4 = byte(2 + r.IntN(252))
	u.lease = float64(minLease) * math.Pow(float64(maxLease)/float64(minLease), r.Float64())
	u.nextChurn = start.Add(time.Duration(r.ExpFloat64() * u.lease))
	if r.Float64() < dualStackShare {
		b := isp.V6.Addr().As16()
		for k := 4; k < 8; k++ {
			b[k] = byte(r.Uint32())
		}
		u.home6 = netip.PrefixFrom(netip.AddrFrom16(b), 64)
	}
	u.carrier = c.Mobile[pickIndex(r, carrierShare)]
	if r.Float64() < workShare {
		// A skewed draw: a few employers hold many users.
		e := int(employers * math.Pow(r.Float64(), 2.5))
		u.work = netip.PrefixFrom(addV4(c.Business.V4.Addr(), uint32(e)<<8), 24)
		for k := range 1 + e%3 {
			u.egress = append(u.egress, byte(10+17*k+e%7))
		}
		u.pWork = 0.15 + 0.35*r.Float64()
	}
	u.devices = newDevices(r)
	for _, d := range u.devices {
		d.replace = start.Add(time.Duration(r.ExpFloat64() * float64(replaceEvery)))
	}
	for _, d := range u.devices {
		if d.phone() {
			u.pMobile = 0.05 + 0.3*r.Float64()
			break
		}
	}
	if r.Float64() < travellerShare {
		n := poisson(r, tripsPerYear*period.Hours()/24/365)
		for range n {
			from := start.Add(time.Duration(r.Int64N(int64(period))))
			dest := travelDestination(r, w, c)
			net := dest.Residential[pickIndex(r, ispShare)]
			if r.Float64() < 0.3 {
				net = dest.Business
			}
			u.trips = append(u.trips, trip{
				from: from, to: from.Add(time.Duration(2+r.IntN(13)) * day), country: dest,
				hotel: hostIn(randomSlash24(r, net.V4), byte(2+r.IntN(252))),
			})
		}
	}
	return u
}

// newDevices returns one to three devices: a computer or a phone; a
// computer and a phone; or those and a tablet or a second computer.
func newDevices(r *rand.Rand) []*device {
	var kinds []string
	switch x := r.Float64(); {
	case x < 0.35:
		if r.Float64() < 0.5 {
			kinds = []string{"phone"}
		} else {
			kinds = []string{"computer"}
		}
	case x < 0.8:
		kinds = []string{"computer", "phone"}
	default:
		if r.Float64() < 0.6 {
			kinds = []string{"computer", "phone", "tablet"}
		} else {
			kinds = []string{"computer", "phone", "computer"}
		}
	}
	ds := make([]*device, 0, len(kinds))
	for _, k := range kinds {
		d := &device{id: fmt.Sprintf("dv_%016x", r.Uint64()), iidSeed: r.Uint64(), android: 13 + r.IntN(3)}
		switch k {
		case "computer":
			d.platform = pick(r, []weighted[Platform]{{Windows, 60}, {Mac, 32}, {Linux, 8}})
			d.weight, d.portable = 1, r.Float64() < 0.6
		case "phone":
			d.platform = pick(r, []weighted[Platform]{{IPhone, 55}, {Android, 45}})
			d.weight, d.portable = 0.8, true
		case "tablet":
			d.platform = IPad
			d.weight, d.portable = 0.4, true
		}
		d.browser = pick(r, platformBrowsers[d.platform])
		if r.Float64() < laggardShare {
			d.lag = 10*day + time.Duration(r.Int64N(int64(50*day)))
		} else {
			d.lag = time.Duration(r.Int64N(int64(10 * day)))
		}
		ds = append(ds, d)
	}
	return ds
}

// logins returns the user's legitimate logins in time order.
func (u *user) logins(r *rand.Rand, w *World, start, end time.Time) []Login {
	var out []Login
	t := u.join
	if t.Before(start) {
		t = start
	}
	for {
		t = t.Add(time.Duration(r.ExpFloat64() / u.rate * float64(day)))
		if !t.Before(end) {
			return out
		}
		out = append(out, u.login(r, t))
	}
}

// login returns one legitimate login at time t.
func (u *user) login(r *rand.Rand, t time.Time) Login {
	l := Login{At: t, User: u.id, Kind: Legit}
	var d *device
	if tr := u.tripAt(t); tr != nil {
		d = u.pickDevice(r, func(d *device) bool { return d.portable })
		if d.phone() && r.Float64() < roamingShare {
			l.IP, l.Context = u.carrierAddr(r), Roaming
		} else {
			l.IP, l.Context = tr.hotel, Travel
		}
	} else {
		weekday := t.Weekday() != time.Saturday && t.Weekday() != time.Sunday
		switch {
		case u.work.IsValid() && weekday && r.Float64() < u.pWork:
			d = u.pickDevice(r, (*device).computer)
			l.IP, l.Context = hostIn(u.work, u.egress[r.IntN(len(u.egress))]), Work
		case r.Float64() < u.pMobile:
			d = u.pickDevice(r, (*device).phone)
			l.IP, l.Context = u.carrierAddr(r), Cellular
		default:
			d = u.pickDevice(r, nil)
			if u.home6.IsValid() && r.Float64() < ipv6Share {
				// Privacy addresses rotate daily, per device.
				l.IP, l.Context = v6Addr(u.home6, splitmix(d.iidSeed^uint64(t.Unix()/86400))), Home6
			} else {
				for !t.Before(u.nextChurn) {
					u.home4 = randomSlash24(r, u.scope4)
					u.host4 = byte(2 + r.IntN(252))
					if !slices.Contains(u.used4, u.home4) {
						u.used4 = append(u.used4, u.home4)
					}
					u.nextChurn = u.nextChurn.Add(time.Duration(r.ExpFloat64() * u.lease))
				}
				l.IP, l.Context = hostIn(u.home4, u.host4), Home
			}
		}
	}
	for !t.Before(d.replace) {
		// A new device of the same kind, on an up-to-date browser.
		d.id, d.iidSeed = fmt.Sprintf("dv_%016x", r.Uint64()), r.Uint64()
		if r.Float64() < 0.3 {
			d.platform = samePlatformKind(r, d.platform)
			d.browser = pick(r, platformBrowsers[d.platform])
		}
		d.lag = time.Duration(r.Int64N(int64(10 * day)))
		d.replace = d.replace.Add(time.Duration(r.ExpFloat64() * float64(replaceEvery)))
	}
	l.UserAgent, l.DeviceID = d.userAgent(t), d.id
	return l
}

// samePlatformKind draws a platform of the same kind as p (a phone for a
// phone, a computer for a computer).
func samePlatformKind(r *rand.Rand, p Platform) Platform {
	switch p {
	case IPhone, Android:
		return pick(r, []weighted[Platform]{{IPhone, 55}, {Android, 45}})
	case Windows, Mac, Linux:
		return pick(r, []weighted[Platform]{{Windows, 60}, {Mac, 32}, {Linux, 8}})
	}
	return p
}

// pickDevice draws a device by weight among those ok accepts (all when ok
// is nil or accepts none).
func (u *user) pickDevice(r *rand.Rand, ok func(*device) bool) *device {
	var ws []weighted[*device]
	for _, d := range u.devices {
		if ok == nil || ok(d) {
			ws = append(ws, weighted[*device]{d, d.weight})
		}
	}
	if len(ws) == 0 {
		return u.pickDevice(r, nil)
	}
	return pick(r, ws)
}

// primary is the device the user logs in with most.
func (u *user) primary() *device {
	best := u.devices[0]
	for _, d := range u.devices[1:] {
		if d.weight > best.weight {
			best = d
		}
	}
	return best
}

func (u *user) tripAt(t time.Time) *trip {
	for i := range u.trips {
		if tr := &u.trips[i]; !t.Before(tr.from) && t.Before(tr.to) {
			return tr
		}
	}
	return nil
}

// carrierAddr is an address of the user's carrier's NAT pool.
func (u *user) carrierAddr(r *rand.Rand) netip.Addr {
	return hostIn(randomSlash24(r, u.carrier.V4), byte(1+r.IntN(254)))
}

// attacks returns n attempts of each attacker kind against the user, at
// random times after the user's first login.
func (u *user) attacks(r *rand.Rand, w *World, first, end time.Time, n int) []Login {
	var out []Login
	span := end.Sub(first) - time.Minute
	if span <= 0 {
		return nil
	}
	for _, k := range Attackers {
		for range n {
			t := first.Add(time.Minute + time.Duration(r.Int64N(int64(span))))
			l := Login{At: t, User: u.id, Kind: k, DeviceID: fmt.Sprintf("dv_%016x", r.Uint64())}
			switch k {
			case Naive:
				c := w.Countries[r.IntN(len(w.Countries))]
				var p netip.Prefix
				switch x := r.Float64(); {
				case x < 0.6: // a rented server, outside the VPN exits
					p = netip.PrefixFrom(addV4(c.Hosting.V4.Addr(), uint32(16+r.IntN(240))<<8), 24)
				case x < 0.9: // a compromised home router
					p = randomSlash24(r, c.Residential[r.IntN(len(c.Residential))].V4)
				default:
					m := c.Mobile[r.IntN(len(c.Mobile))]
					p = randomSlash24(r, m.V4)
				}
				l.IP, l.UserAgent = hostIn(p, byte(1+r.IntN(254))), randomUserAgent(r, t)
			case VPNAttacker:
				v := u.country.VPN[r.IntN(len(u.country.VPN))]
				l.IP = hostIn(v.Pool[r.IntN(len(v.Pool))], byte(1+r.IntN(254)))
				l.UserAgent = commonUserAgent(r, t)
			case Targeted:
				isp := u.country.Residential[pickIndex(r, ispShare)]
				p := randomSlash24(r, isp.V4)
				for p == u.home4 {
					p = randomSlash24(r, isp.V4)
				}
				l.IP = hostIn(p, byte(2+r.IntN(252)))
				l.UserAgent = u.primary().guessedUserAgent(t)
			case TargetedISP:
				// The victim's ISP block; a third of the time a /24 the
				// victim has had (another host in it).
				p := randomSlash24(r, u.scope4)
				if r.Float64() < 1.0/3 {
					p = u.used4[r.IntN(len(u.used4))]
				}
				l.IP = hostIn(p, byte(2+r.IntN(252)))
				d := u.primary()
				l.UserAgent = userAgent(d.platform, d.browser, installed(d.platform, d.browser, t, 0, d.android))
			}
			out = append(out, l)
		}
	}
	return out
}

// travelDestination draws a country other than home by travel weight.
func travelDestination(r *rand.Rand, w *World, home *Country) *Country {
	var ws []weighted[*Country]
	for _, c := range w.Countries {
		if c != home && c.Travel > 0 {
			ws = append(ws, weighted[*Country]{c, c.Travel})
		}
	}
	return pick(r, ws)
}

// randomSlash24 returns a random /24 inside p (p no longer than /24).
func randomSlash24(r *rand.Rand, p netip.Prefix) netip.Prefix {
	n := 1 << (24 - p.Bits())
	return netip.PrefixFrom(addV4(p.Masked().Addr(), uint32(r.IntN(n))<<8), 24)
}

// pickIndex draws an index with probability proportional to its weight.
func pickIndex(r *rand.Rand, ws []float64) int {
	u := r.Float64()
	var sum float64
	for _, w := range ws {
		sum += w
	}
	u *= sum
	for i, w := range ws {
		if u < w {
			return i
		}
		u -= w
	}
	return len(ws) - 1
}

// poisson draws from a Poisson distribution with mean lambda (small).
func poisson(r *rand.Rand, lambda float64) int {
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// splitmix scrambles x (SplitMix64's finaliser): distinct inputs give
// unrelated-looking interface ids.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
