// Package evalset generates the labelled, time-ordered login set that the
// evaluation harness (cmd/stepup-eval) replays through the engine to prove
// the risk model (RISK.md section 5).
//
// The set belongs to one tenant. Legitimate users have habits drawn from a
// seeded random source: a home network (an IPv4 address whose DHCP lease,
// days to weeks long, moves it anywhere in the home's scope of its ISP, a
// /16 to a /24, and for dual-stack homes an IPv6 /64 in which the devices'
// privacy addresses rotate daily), often a work network shared with
// colleagues, a phone behind a mobile carrier's NAT spread over a /15 or
// /17 block (a fresh address, usually in a fresh /24, on every mobile
// login), one to three devices with stable device ids whose browsers update
// every six weeks or so and which are replaced now and then (a new id, an
// up-to-date browser), occasional trips abroad, and a login rate that spans
// two orders of magnitude so that history lengths run from one to well over
// a hundred. Four kinds of attacker try to log in as those users with the
// right password: naive (a random country and network, a random browser),
// VPN (the victim's country through a VPN provider, the tenant's most
// common browser), targeted (the victim's country from a residential
// address, the victim's browser family and version with a guessed OS, a
// new device id) and targeted in the ISP (the victim's own ISP block, a
// third of the time a /24 the victim has used, an up-to-date browser of the
// victim's family on the victim's OS, a device of his own).
//
// Every address the generator hands out lies in a network of the [World],
// whose table [World.Networks] turns into GeoLite2-shaped Country and ASN
// databases (see [World.OpenGeoIP]) so that the real risk/geoip reader
// resolves every login to its country and, optionally, its AS.
//
// The package is a test and tooling helper: it does no I/O beyond building
// those databases in memory, keeps no global state, and the same Options
// always yield the same Set.
package evalset
