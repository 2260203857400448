// Package evalset generates the labelled, time-ordered login set that the
// evaluation harness (cmd/stepup-eval) replays through the engine to prove
// the risk model (RISK.md section 5).
//
// The set belongs to one tenant. Legitimate users have habits drawn from a
// seeded random source: a home network (an IPv4 /24 whose address the ISP's
// DHCP changes now and then, and for dual-stack homes an IPv6 /64 in which
// the devices' privacy addresses rotate daily), often a work network shared
// with colleagues, a phone behind a mobile carrier's NAT pool, one to three
// devices with stable device ids whose browsers update every six weeks or
// so, occasional trips abroad, and a login rate that spans two orders of
// magnitude so that history lengths run from one to well over a hundred.
// Three kinds of attacker try to log in as those users with the right
// password: naive (a random country and network, a random browser),
// VPN (the victim's country through a VPN provider, the tenant's most
// common browser) and targeted (the victim's country from a residential
// address, the victim's own browser and OS, a new device id).
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
