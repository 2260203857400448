package evalset

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/stepup-auth/stepup/internal/geoiptest"
	"github.com/stepup-auth/stepup/risk/geoip"
)

// NetKind says what kind of operator a [Network] belongs to.
type NetKind uint8

// The kinds of network in the world.
const (
	// Residential is a home broadband ISP: customers get an IPv4 address in
	// a /24 by DHCP and, when dual-stack, an IPv6 /64.
	Residential NetKind = iota
	// Mobile is a mobile carrier whose customers share a NAT pool of /24s.
	Mobile
	// Business is the country's business ISP: every employer has a /24.
	Business
	// Hosting is the country's data centres, where attackers rent servers.
	Hosting
	// VPN is a VPN provider's exit network in one country.
	VPN
)

// String names the kind.
func (k NetKind) String() string {
	switch k {
	case Residential:
		return "residential"
	case Mobile:
		return "mobile"
	case Business:
		return "business"
	case Hosting:
		return "hosting"
	case VPN:
		return "vpn"
	}
	return fmt.Sprintf("NetKind(%d)", uint8(k))
}

// Network is one operator's address space in one country.
type Network struct {
	Name    string
	Kind    NetKind
	Country string
	ASN     uint32
	// V4 is the operator's IPv4 block in the country.
	V4 netip.Prefix
	// V6 is the operator's IPv6 block (residential ISPs only, else zero).
	V6 netip.Prefix
	// Pool lists the /24s addresses are drawn from (a carrier's NAT pool,
	// a VPN provider's exits); nil means any /24 of V4.
	Pool []netip.Prefix
}

// Country is one country of the world with its operators.
type Country struct {
	Code string
	// Home weighs the country as the home of the tenant's users (0: none
	// live there); Travel weighs it as a holiday or business destination.
	Home, Travel float64

	Residential []*Network // weighted by ispShare
	Mobile      []*Network // weighted by carrierShare
	Business    *Network
	Hosting     *Network
	VPN         []*Network // one per VPN provider, in provider order
}

// World is the fixed address plan every generated login draws from: a set
// of countries, each with residential ISPs, mobile carriers, a business ISP,
// a hosting provider and the exits of the VPN providers. It is the same for
// every seed, so GeoIP databases built from it can be reused.
type World struct {
	Countries []*Country
	byCode    map[string]*Country
	networks  []*Network
}

// ispShare and carrierShare are the market shares of a country's
// residential ISPs and mobile carriers.
var (
	ispShare     = []float64{0.5, 0.3, 0.2}
	carrierShare = []float64{0.6, 0.4}
	// natBits are the sizes of the carriers' NAT blocks: a carrier hands
	// out a fresh address, usually in a fresh /24, anywhere in its block
	// on every mobile login.
	natBits = []int{15, 17}
	// vpnProviders run exits in every country, each under its own AS.
	vpnProviders = []string{"SwiftTunnel VPN", "Cloakline", "Burrow Networks", "PrivaNet"}
)

// countryTable is the world: ISO code, weight as a home country, weight as
// a travel destination. A single tenant's users concentrate in a few
// markets; travel and attacks reach further.
var countryTable = []struct {
	code         string
	home, travel float64
}{
	{"US", 40, 8}, {"GB", 14, 6}, {"CA", 9, 3}, {"DE", 8, 4}, {"AU", 6, 2},
	{"FR", 5, 8}, {"IN", 5, 2}, {"NL", 4, 3}, {"IE", 3, 2}, {"NZ", 2, 1},
	{"ES", 2, 10}, {"IT", 2, 8}, {"MX", 0, 6}, {"JP", 0, 5}, {"TH", 0, 5},
	{"PT", 0, 5}, {"GR", 0, 4}, {"SG", 0, 3}, {"AE", 0, 3}, {"BR", 0, 2},
	{"ZA", 0, 1}, {"TR", 0, 2}, {"KR", 0, 1}, {"CN", 0, 1}, {"RU", 0, 0.5},
	{"NG", 0, 0.2}, {"VN", 0, 1}, {"UA", 0, 0.2}, {"RO", 0, 0.5}, {"ID", 0, 1},
}

// Address plan. Country i owns the IPv4 /12 at v4Base + i·2²⁰:
//
//	/14 × 3   residential ISPs (offsets 0, 4, 8 in /16 units)
//	/16 × 2   unused (12, 13)
//	/16       business ISP (14)
//	/16       hosting (15); its first /20 holds the VPN providers' /22s
//
// and the mobile carriers' NAT blocks (a /15 and a /17) in the /12 at
// mobileBase + i·2²⁰, and the IPv6 /24 at 2a0c:i00::/24, one /32 per residential ISP. The
// blocks are public unicast space that no real database is consulted for:
// the run's own GeoIP databases define what they mean.
var (
	v4Base     = netip.AddrFrom4([4]byte{24, 0, 0, 0})
	mobileBase = netip.AddrFrom4([4]byte{72, 0, 0, 0})
)

const (
	asnBase    = 64512 // private-use ASNs, one per operator
	vpnASNBase = 65001 // one per VPN provider, across countries
)

// NewWorld returns the world. It is deterministic and cheap.
func NewWorld() *World {
	w := &World{byCode: map[string]*Country{}}
	asn := uint32(asnBase)
	add := func(n *Network) *Network {
		n.ASN = asn
		asn++
		w.networks = append(w.networks, n)
		return n
	}
	for i, row := range countryTable {
		c := &Country{Code: row.code, Home: row.home, Travel: row.travel}
		base := addV4(v4Base, uint32(i)<<20)
		for j := range ispShare {
			c.Residential = append(c.Residential, add(&Network{
				Name: fmt.Sprintf("%s Broadband %c", row.code, 'A'+j), Kind: Residential, Country: row.code,
				V4: netip.PrefixFrom(addV4(base, uint32(4*j)<<16), 14),
				V6: netip.PrefixFrom(v6Block(i, j), 32),
			}))
		}
		mbase := addV4(mobileBase, uint32(i)<<20)
		for j, bits := range natBits {
			c.Mobile = append(c.Mobile, add(&Network{
				Name: fmt.Sprintf("%s Mobile %c", row.code, 'A'+j), Kind: Mobile, Country: row.code,
				V4: netip.PrefixFrom(addV4(mbase, uint32(4*j)<<16), bits),
			}))
		}
		c.Business = add(&Network{
			Name: row.code + " Business Net", Kind: Business, Country: row.code,
			V4: netip.PrefixFrom(addV4(base, 14<<16), 16),
		})
		c.Hosting = add(&Network{
			Name: row.code + " Hosting", Kind: Hosting, Country: row.code,
			V4: netip.PrefixFrom(addV4(base, 15<<16), 16),
		})
		for p, name := range vpnProviders {
			n := &Network{
				Name: name, Kind: VPN, Country: row.code, ASN: uint32(vpnASNBase + p),
				V4: netip.PrefixFrom(addV4(c.Hosting.V4.Addr(), uint32(p)<<10), 22),
			}
			for k := range 4 {
				n.Pool = append(n.Pool, netip.PrefixFrom(addV4(n.V4.Addr(), uint32(k)<<8), 24))
			}
			w.networks = append(w.networks, n) // keeps the provider's ASN
			c.VPN = append(c.VPN, n)
		}
		w.Countries = append(w.Countries, c)
		w.byCode[c.Code] = c
	}
	return w
}

// Country returns the country with the ISO code, or nil.
func (w *World) Country(code string) *Country { return w.byCode[code] }

// Networks returns the table of every network for package geoiptest, in an
// order where a more specific network follows the block it lies in (VPN
// exits after their hosting provider), so inserting in order lets the exit
// override its part of the block.
func (w *World) Networks() []geoiptest.Network {
	out := make([]geoiptest.Network, 0, 2*len(w.networks))
	for _, n := range w.networks {
		out = append(out, geoiptest.Network{Prefix: n.V4.String(), Country: n.Country, ASN: n.ASN, ASNOrg: n.Name})
		if n.V6.IsValid() {
			out = append(out, geoiptest.Network{Prefix: n.V6.String(), Country: n.Country, ASN: n.ASN, ASNOrg: n.Name})
		}
	}
	return out
}

// GeoIP builds GeoLite2-shaped databases of the world in memory: always a
// Country database and, when withASN, an ASN database too (the scorer's
// network level is then the AS instead of the /24 or /64).
func (w *World) GeoIP(withASN bool) (geoip.Bytes, error) {
	nets := w.Networks()
	var b geoip.Bytes
	var err error
	if b.Country, err = geoiptest.Build(geoiptest.TypeCountry, nets); err != nil {
		return b, fmt.Errorf("evalset: country database: %w", err)
	}
	if withASN {
		if b.ASN, err = geoiptest.Build(geoiptest.TypeASN, nets); err != nil {
			return b, fmt.Errorf("evalset: asn database: %w", err)
		}
	}
	return b, nil
}

// OpenGeoIP builds the world's databases (see [World.GeoIP]) and opens them
// with the real risk/geoip reader.
func (w *World) OpenGeoIP(withASN bool) (*geoip.Reader, error) {
	b, err := w.GeoIP(withASN)
	if err != nil {
		return nil, err
	}
	return geoip.OpenBytes(b)
}

// addV4 returns a + off.
func addV4(a netip.Addr, off uint32) netip.Addr {
	b := a.As4()
	var out [4]byte
	binary.BigEndian.PutUint32(out[:], binary.BigEndian.Uint32(b[:])+off)
	return netip.AddrFrom4(out)
}

// hostIn returns the address with the given host number in a /24.
func hostIn(p netip.Prefix, host byte) netip.Addr {
	b := p.Masked().Addr().As4()
	b[3] = host
	return netip.AddrFrom4(b)
}

// v6Block returns the /32 of residential ISP j of country i.
func v6Block(i, j int) netip.Addr {
	var b [16]byte
	b[0], b[1] = 0x2a, 0x0c
	binary.BigEndian.PutUint16(b[2:], uint16(i<<8|j))
	return netip.AddrFrom16(b)
}

// v6Addr returns the address in /64 p with interface id iid.
func v6Addr(p netip.Prefix, iid uint64) netip.Addr {
	b := p.Masked().Addr().As16()
	binary.BigEndian.PutUint64(b[8:], iid)
	return netip.AddrFrom16(b)
}
