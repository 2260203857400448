package geoiptest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Database types written into the metadata, as MaxMind names them; the
// geoip2 reader dispatches on them.
const (
	TypeCountry = "GeoLite2-Country"
	TypeCity    = "GeoLite2-City"
	TypeASN     = "GeoLite2-ASN"
)

// buildEpoch is fixed so that the same table always yields the same bytes
// (the demo database is checked in). 2025-01-01T00:00:00Z.
const buildEpoch = 1735689600

// Network is one row of a test database: a prefix and what the databases
// say about it. Each database takes the fields it holds and ignores the
// rest.
type Network struct {
	// Prefix in CIDR notation, IPv4 or IPv6: "192.0.2.0/24", "2001:db8::/32".
	Prefix string

	// Country is the ISO 3166-1 alpha-2 code (Country and City databases).
	// The English name and the continent come from a small built-in table;
	// CountryName and Continent override it.
	Country     string
	CountryName string
	Continent   string

	// City is the English city name (City database).
	City string
	// Lat and Lon place the network (City database). Both zero means no
	// location is written.
	Lat, Lon float64

	// ASN and ASNOrg describe the autonomous system (ASN database).
	ASN    uint32
	ASNOrg string
}

// DemoNetworks is the table of the demo Country database that package
// risk/geoip embeds: the documentation ranges (RFC 5737, RFC 3849) mapped
// to four countries.
var DemoNetworks = []Network{
	{Prefix: "192.0.2.0/24", Country: "AU"},    // TEST-NET-1
	{Prefix: "198.51.100.0/24", Country: "GB"}, // TEST-NET-2
	{Prefix: "203.0.113.0/24", Country: "US"},  // TEST-NET-3
	{Prefix: "2001:db8::/32", Country: "DE"},   // IPv6 documentation prefix
}

// Paths are the files written by [Write]. All three are written even when
// no row carries a database's fields; its lookups then find no data.
type Paths struct {
	Country, City, ASN string
}

// Write writes Country, City and ASN databases for nets into tb's temporary
// directory and returns their paths. It fails the test on error.
func Write(tb testing.TB, nets []Network) Paths {
	tb.Helper()
	return Paths{
		Country: WriteFile(tb, TypeCountry, nets),
		City:    WriteFile(tb, TypeCity, nets),
		ASN:     WriteFile(tb, TypeASN, nets),
	}
}

// WriteFile writes one database of the given type (TypeCountry, TypeCity or
// TypeASN) for nets into tb's temporary directory and returns its path.
func WriteFile(tb testing.TB, dbType string, nets []Network) string {
	tb.Helper()
	b, err := Build(dbType, nets)
	if err != nil {
		tb.Fatalf("geoiptest: %v", err)
	}
	path := filepath.Join(tb.TempDir(), dbType+".mmdb")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		tb.Fatalf("geoiptest: %v", err)
	}
	return path
}

// Build returns the bytes of a database of the given type for nets. The
// documentation ranges (192.0.2.0/24, 2001:db8::/32 …) are allowed, so
// tests need no real addresses.
func Build(dbType string, nets []Network) ([]byte, error) {
	var record func(Network) mmdbtype.DataType
	switch dbType {
	case TypeCountry:
		record = countryRecord
	case TypeCity:
		record = cityRecord
	case TypeASN:
		record = asnRecord
	default:
		return nil, fmt.Errorf("geoiptest: unknown database type %q", dbType)
	}
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            dbType,
		Description:             map[string]string{"en": "stepup test " + dbType + " database"},
		Languages:               []string{"en"},
		IncludeReservedNetworks: true,
		RecordSize:              24,
		BuildEpoch:              buildEpoch,
	})
	if err != nil {
		return nil, fmt.Errorf("geoiptest: %w", err)
	}
	for _, n := range nets {
		_, ipnet, err := net.ParseCIDR(n.Prefix)
		if err != nil {
			return nil, fmt.Errorf("geoiptest: network %q: %w", n.Prefix, err)
		}
		if err := tree.Insert(ipnet, record(n)); err != nil {
			return nil, fmt.Errorf("geoiptest: insert %s: %w", n.Prefix, err)
		}
	}
	var buf bytes.Buffer
	if _, err := tree.WriteTo(&buf); err != nil {
		return nil, fmt.Errorf("geoiptest: write: %w", err)
	}
	return buf.Bytes(), nil
}

func names(en string) mmdbtype.Map {
	return mmdbtype.Map{"en": mmdbtype.String(en)}
}

func countryRecord(n Network) mmdbtype.DataType {
	m := mmdbtype.Map{}
	if n.Country == "" {
		return m
	}
	known := countries[n.Country]
	name, continent := n.CountryName, n.Continent
	if name == "" {
		name = known.name
	}
	if name == "" {
		name = n.Country
	}
	if continent == "" {
		continent = known.continent
	}
	country := mmdbtype.Map{"iso_code": mmdbtype.String(n.Country), "names": names(name)}
	m["country"] = country
	m["registered_country"] = country
	if continent != "" {
		m["continent"] = mmdbtype.Map{
			"code":  mmdbtype.String(continent),
			"names": names(continents[continent]),
		}
	}
	return m
}

func cityRecord(n Network) mmdbtype.DataType {
	m := countryRecord(n).(mmdbtype.Map)
	if n.City != "" {
		m["city"] = mmdbtype.Map{"names": names(n.City)}
	}
	if n.Lat != 0 || n.Lon != 0 {
		m["location"] = mmdbtype.Map{
			"latitude":        mmdbtype.Float64(n.Lat),
			"longitude":       mmdbtype.Float64(n.Lon),
			"accuracy_radius": mmdbtype.Uint16(50),
		}
	}
	return m
}

func asnRecord(n Network) mmdbtype.DataType {
	m := mmdbtype.Map{}
	if n.ASN != 0 {
		m["autonomous_system_number"] = mmdbtype.Uint32(n.ASN)
	}
	if n.ASNOrg != "" {
		m["autonomous_system_organization"] = mmdbtype.String(n.ASNOrg)
	}
	return m
}

var continents = map[string]string{
	"AF": "Africa", "AN": "Antarctica", "AS": "Asia", "EU": "Europe",
	"NA": "North America", "OC": "Oceania", "SA": "South America",
}

var countries = map[string]struct{ name, continent string }{
	"AU": {"Australia", "OC"},
	"BR": {"Brazil", "SA"},
	"CA": {"Canada", "NA"},
	"CN": {"China", "AS"},
	"DE": {"Germany", "EU"},
	"FR": {"France", "EU"},
	"GB": {"United Kingdom", "EU"},
	"IE": {"Ireland", "EU"},
	"IN": {"India", "AS"},
	"JP": {"Japan", "AS"},
	"NL": {"Netherlands", "EU"},
	"NZ": {"New Zealand", "OC"},
	"RU": {"Russia", "EU"},
	"US": {"United States", "NA"},
	"ZA": {"South Africa", "AF"},
}
