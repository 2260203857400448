// Package geoip answers what MaxMind-format databases (GeoIP2 or GeoLite2
// Country, City and ASN, read with geoip2-golang) know about an address, in
// the shape the risk scorer takes: a [risk.GeoInfo].
//
// Every database is optional. Without a City database there is no location
// (and so no impossible-travel signal); without an ASN database the scorer's
// network level falls back to the address prefix; without any, lookups
// return an empty GeoInfo and the country level reads "??".
//
// A Reader is safe for concurrent use. The package does not download or
// refresh databases; operators replace the files and restart.
package geoip
