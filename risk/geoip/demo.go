package geoip

import _ "embed"

// demoCountry is written by internal/gendemo (go generate).
//
//go:embed demo-country.mmdb
var demoCountry []byte

// OpenDemo opens the embedded demo Country database. It knows only the
// documentation ranges: 192.0.2.0/24 is AU, 198.51.100.0/24 GB,
// 203.0.113.0/24 US and 2001:db8::/32 DE. It lets a server run, and
// examples show a country, without MaxMind's databases.
func OpenDemo() (*Reader, error) {
	return OpenBytes(Bytes{Country: demoCountry})
}
