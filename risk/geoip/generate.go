package geoip

// The demo database is written twice: next to this package for go:embed
// (which cannot reach outside the package directory) and under testdata
// for other tools and documentation.
//go:generate go run ./internal/gendemo -o demo-country.mmdb
//go:generate go run ./internal/gendemo -o ../../testdata/geoip/demo-country.mmdb
