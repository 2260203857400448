package evalset

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
)

// Kind labels a login: legitimate, or one of the attacker models.
type Kind uint8

// The labels.
const (
	// Legit is the account's owner.
	Legit Kind = iota
	// Naive is an attacker with the password and nothing else: a random
	// country and network, a random (often outdated or scripted) browser.
	Naive
	// VPNAttacker knows the victim's country and logs in through a VPN exit
	// there with the most common kind of browser.
	VPNAttacker
	// Targeted knows the victim's country and browser (family, version and
	// OS: the reduced user agent makes that the whole string), logs in from
	// a residential address in that country and sends a new device id.
	Targeted
	// TargetedISP sits in the victim's own ISP block (a third of the time
	// in a /24 the victim has used), runs an up-to-date browser of the
	// victim's family on the victim's OS, on a device of his own (a new
	// device id).
	TargetedISP
)

// Kinds lists every label in order.
var Kinds = []Kind{Legit, Naive, VPNAttacker, Targeted, TargetedISP}

// Attackers lists the attacker labels in order.
var Attackers = []Kind{Naive, VPNAttacker, Targeted, TargetedISP}

// String names the label.
func (k Kind) String() string {
	switch k {
	case Legit:
		return "legit"
	case Naive:
		return "naive"
	case VPNAttacker:
		return "vpn"
	case Targeted:
		return "targeted"
	case TargetedISP:
		return "targeted-isp"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Context says where a legitimate login came from, for breakdowns.
type Context uint8

// The contexts of legitimate logins; attacks have NoContext.
const (
	NoContext Context = iota
	Home              // home broadband, IPv4
	Home6             // home broadband, IPv6 privacy address
	Work              // the employer's network
	Cellular          // the phone on its carrier's NAT
	Travel            // abroad: hotel or café Wi-Fi
	Roaming           // abroad, the phone roaming through its home carrier
)

// Contexts lists the contexts of legitimate logins in order.
var Contexts = []Context{Home, Home6, Work, Cellular, Travel, Roaming}

// String names the context.
func (c Context) String() string {
	switch c {
	case NoContext:
		return "-"
	case Home:
		return "home"
	case Home6:
		return "home-ipv6"
	case Work:
		return "work"
	case Cellular:
		return "mobile"
	case Travel:
		return "travel"
	case Roaming:
		return "roaming"
	}
	return fmt.Sprintf("Context(%d)", uint8(c))
}

// Login is one login attempt with the right password.
type Login struct {
	At        time.Time
	User      string
	IP        netip.Addr
	UserAgent string
	// DeviceID is the host app's device id (a long-lived cookie id);
	// attackers send a new one.
	DeviceID string
	Kind     Kind
	Context  Context
}

// Options configure [Generate]. The zero value of each field means its
// default.
type Options struct {
	Seed  uint64 // the same seed yields the same set
	Users int    // default 2000
	Days  int    // length of the period, default 180
	// Start is the beginning of the period, default 2025-03-03T00:00Z.
	Start time.Time
	// AttacksPerUser is the number of attempts of each attacker kind
	// against every user who logs in at least once (default 1).
	AttacksPerUser int
}

func (o *Options) defaults() {
	if o.Users <= 0 {
		o.Users = 2000
	}
	if o.Days <= 0 {
		o.Days = 180
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2025, 3, 3, 0, 0, 0, 0, time.UTC)
	}
	if o.AttacksPerUser <= 0 {
		o.AttacksPerUser = 1
	}
}

// Set is a generated login set for one tenant.
type Set struct {
	// Options are the options the set was generated with, defaults filled.
	Options Options
	// World is the address plan the logins' addresses come from.
	World *World
	// Users are the ids of every generated user, in generation order.
	Users []string
	// Logins are every attempt in time order (ties broken by user, then
	// the user's own order).
	Logins []Login
}

// End returns the end of the set's period.
func (s *Set) End() time.Time { return s.Options.Start.AddDate(0, 0, s.Options.Days) }

// Count returns the number of logins with label k.
func (s *Set) Count(k Kind) int {
	n := 0
	for _, l := range s.Logins {
		if l.Kind == k {
			n++
		}
	}
	return n
}

// Generate returns the login set of opts. Every user is generated from
// their own random stream derived from the seed and the user's index, so a
// user's logins do not depend on how many users are generated.
func Generate(opts Options) *Set {
	opts.defaults()
	w := NewWorld()
	s := &Set{Options: opts, World: w, Users: make([]string, 0, opts.Users)}
	type seqLogin struct {
		Login
		user, seq int
	}
	var all []seqLogin
	home := homeCountries(w)
	end := s.End()
	for i := range opts.Users {
		r := rand.New(rand.NewPCG(opts.Seed, uint64(i)))
		u := newUser(r, w, home, i, opts.Start, end)
		s.Users = append(s.Users, u.id)
		logins := u.logins(r, w, opts.Start, end)
		if len(logins) > 0 {
			logins = append(logins, u.attacks(r, w, logins[0].At, end, opts.AttacksPerUser)...)
		}
		for j, l := range logins {
			all = append(all, seqLogin{l, i, j})
		}
	}
	slices.SortFunc(all, func(a, b seqLogin) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.user, b.user), cmp.Compare(a.seq, b.seq))
	})
	s.Logins = make([]Login, len(all))
	for i, l := range all {
		s.Logins[i] = l.Login
	}
	return s
}

// homeCountries returns the countries users live in, weighted.
func homeCountries(w *World) []weighted[*Country] {
	var out []weighted[*Country]
	for _, c := range w.Countries {
		if c.Home > 0 {
			out = append(out, weighted[*Country]{c, c.Home})
		}
	}
	return out
}
