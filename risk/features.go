package risk

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Feature names: the groups whose levels are combined into one factor of
// the score.
const (
	FeatureIP     = "ip"
	FeatureUA     = "ua"
	FeatureDevice = "dev"
)

// Level names. They are stable: the engine keys stored counts by them.
const (
	LevelIPAddr    = "ip.addr"    // the address itself
	LevelIPNet     = "ip.net"     // the /24 or /64 prefix (configurable)
	LevelIPBlock   = "ip.block"   // the /16 or /32 block: the operator's, without an ASN database
	LevelIPASN     = "ip.asn"     // "AS<n>", only with an ASN database
	LevelIPCountry = "ip.cc"      // ISO country code, "??" when unknown
	LevelUAFull    = "ua.full"    // the whole User-Agent string
	LevelUABrowser = "ua.browser" // browser family and major version
	LevelUAOS      = "ua.os"      // OS family and major version
	LevelUADevice  = "ua.device"  // desktop, mobile, tablet, bot or other
	LevelDeviceID  = "dev.id"     // the host app's device id
)

// levelNames are every level name, in a fixed order.
var levelNames = []string{LevelIPAddr, LevelIPNet, LevelIPBlock, LevelIPASN, LevelIPCountry,
	LevelUAFull, LevelUABrowser, LevelUAOS, LevelUADevice, LevelDeviceID}

// LevelNames returns every level name [Features] may produce, in a fixed
// order: whoever stores per-level data (and must erase it) names its keys
// from this list, so a new level is never missed.
func LevelNames() []string { return slices.Clone(levelNames) }

// Level weights within their feature, from Wiefling et al.'s reference code,
// where a feature's probabilities are these weighted sums over its levels.
// [Score] no longer sums levels (it backs off to the most specific level
// the user has had, see featureTerm); the weights stay in [Level] for
// callers, and the user agent's split of a signal between new_browser and
// new_os follows the ratio of their weights.
const (
	WeightIPAddr    = 0.6
	WeightIPNet     = 0.3
	WeightIPBlock   = 0.3 // stands in for the operator's network, as the AS does
	WeightIPASN     = 0.3 // shares the network's weight: the reference code had one network level
	WeightIPCountry = 0.1
	WeightUAFull    = 0.5386653840551359
	WeightUABrowser = 0.2680451498625666
	WeightUAOS      = 0.18818295100109536
	WeightUADevice  = 0.0051065150812021525
	WeightDeviceID  = 1.0
)

// UnknownCountry is the "ip.cc" value when GeoIP has no country.
const UnknownCountry = "??"

// GeoInfo is what a GeoIP lookup knows about an address. Zero fields mean
// unknown; package risk/geoip fills it.
type GeoInfo struct {
	Country     string  // ISO 3166-1 alpha-2 code, "" when unknown
	City        string  // English city name, "" when unknown
	Lat, Lon    float64 // degrees; meaningful only when HasLocation
	HasLocation bool    // a City database placed the address
	ASN         uint32  // autonomous system number, 0 when unknown
	ASNOrg      string  // the AS's organisation name
}

// Input is one login as the engine sees it.
type Input struct {
	IP        netip.Addr
	UserAgent string
	DeviceID  string
	Geo       GeoInfo
}

// Level is one level of a hierarchical feature: its stable name, the feature
// it belongs to, its weight within that feature and this login's raw value.
// The engine must hash Value (keyed HMAC) before storing it.
type Level struct {
	Name    string
	Feature string
	Weight  float64
	Value   string
}

// Features are a login's extracted features: the levels that are scored and
// the parsed details that signals and the device list show.
type Features struct {
	// IP is the address with any IPv4-in-IPv6 mapping and zone removed;
	// invalid when the input had none.
	IP netip.Addr
	// Network is the "ip.net" value, the address's prefix, such as
	// "192.0.2.0/24".
	Network string
	// Block is the "ip.block" value, the address's wider block (the /16 or
	// /32 an operator's customers hop within), such as "192.0.0.0/16".
	Block string
	// Country is the upper-case ISO code, "" when unknown.
	Country string
	// Geo is the GeoIP answer the features were extracted from.
	Geo GeoInfo
	// UA is the parsed user agent.
	UA UserAgent
	// DeviceID is the host app's device id, "" when absent or ignored.
	DeviceID string

	levels []Level
}

// Levels returns the scored levels in a stable order, features grouped and
// each feature's levels from the most to the least specific: ip.addr,
// ip.net, ip.cc, ua.full, ua.browser, ua.os, ua.device, then dev.id when
// present. The IP levels are absent when the address is invalid.
func (f Features) Levels() []Level { return slices.Clone(f.levels) }

// Place returns where and when this login happened, or nil when GeoIP had
// no location. The engine stores it as the user's last login once the login
// is learned.
func (f Features) Place(at time.Time) *Place {
	if !f.Geo.HasLocation {
		return nil
	}
	return &Place{At: at, Lat: f.Geo.Lat, Lon: f.Geo.Lon, Country: f.Country}
}

// Extract derives the features of a login. It is pure and cheap once the
// user-agent parser is warm (see [WarmUp]).
func Extract(in Input, opts Options) Features {
	o := opts.withDefaults()
	f := Features{
		IP:      in.IP.Unmap().WithZone(""),
		Country: strings.ToUpper(strings.TrimSpace(in.Geo.Country)),
		Geo:     in.Geo,
		UA:      ParseUserAgent(in.UserAgent),
	}
	f.levels = make([]Level, 0, 8)
	if f.IP.IsValid() {
		f.Network = network(f.IP, o)
		if netBits, blockBits := bitsOf(f.IP, o.IPv4Prefix, o.IPv6Prefix), bitsOf(f.IP, o.IPv4BlockPrefix, o.IPv6BlockPrefix); blockBits < netBits {
			f.Block = prefix(f.IP, o.IPv4BlockPrefix, o.IPv6BlockPrefix)
		}
		cc := f.Country
		if cc == "" {
			cc = UnknownCountry
		}
		f.levels = append(f.levels,
			Level{LevelIPAddr, FeatureIP, WeightIPAddr, f.IP.String()},
			Level{LevelIPNet, FeatureIP, WeightIPNet, f.Network},
		)
		// The wider block stands in for the operator without an ASN
		// database: a carrier's NAT hands out a new /24 of its /15 on
		// every login, a home's DHCP lease moves within its ISP's /16;
		// neither is a new network operator. (Absent when the network
		// level is configured as wide.)
		if f.Block != "" {
			f.levels = append(f.levels, Level{LevelIPBlock, FeatureIP, WeightIPBlock, f.Block})
		}
		// With an ASN database the AS is a level of its own between the
		// prefix and the country: a new prefix of the user's own ISP (an
		// IPv6 privacy range, a DHCP move) is not a new ISP, and a new
		// prefix of that ISP is still a new prefix.
		if in.Geo.ASN != 0 {
			f.levels = append(f.levels, Level{LevelIPASN, FeatureIP, WeightIPASN, "AS" + strconv.FormatUint(uint64(in.Geo.ASN), 10)})
		}
		f.levels = append(f.levels, Level{LevelIPCountry, FeatureIP, WeightIPCountry, cc})
	}
	f.levels = append(f.levels,
		Level{LevelUAFull, FeatureUA, WeightUAFull, in.UserAgent},
		Level{LevelUABrowser, FeatureUA, WeightUABrowser, f.UA.Browser()},
		Level{LevelUAOS, FeatureUA, WeightUAOS, f.UA.OS()},
		Level{LevelUADevice, FeatureUA, WeightUADevice, f.UA.DeviceType},
	)
	if in.DeviceID != "" && !o.IgnoreDevice {
		f.DeviceID = in.DeviceID
		f.levels = append(f.levels, Level{LevelDeviceID, FeatureDevice, WeightDeviceID, in.DeviceID})
	}
	return f
}

// network returns the "ip.net" value: the AS when known, because one ISP's
// customers hop between its prefixes, else the configured prefix.
func network(ip netip.Addr, o Options) string { return prefix(ip, o.IPv4Prefix, o.IPv6Prefix) }

func bitsOf(ip netip.Addr, v4, v6 int) int {
	if ip.Is4() {
		return v4
	}
	return v6
}

// prefix returns the address's prefix of v4 or v6 bits, by family.
func prefix(ip netip.Addr, v4, v6 int) string {
	bits := v6
	if ip.Is4() {
		bits = v4
	}
	p, err := ip.Prefix(bits)
	if err != nil { // unreachable: bits are within range for the family
		return ip.String()
	}
	return p.String()
}
