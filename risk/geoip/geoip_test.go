package geoip

import (
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stepup-auth/stepup/internal/geoiptest"
	"github.com/stepup-auth/stepup/risk"
)

var testNetworks = []geoiptest.Network{
	{Prefix: "192.0.2.0/24", Country: "AU", City: "Sydney", Lat: -33.87, Lon: 151.21, ASN: 64500, ASNOrg: "Example Telecom AU"},
	{Prefix: "198.51.100.0/24", Country: "GB", City: "London", Lat: 51.51, Lon: -0.13, ASN: 64501, ASNOrg: "Example Broadband"},
	{Prefix: "203.0.113.0/25", Country: "US"}, // no city, no location, no AS
	{Prefix: "2001:db8:1::/48", Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.40, ASN: 64502, ASNOrg: "Beispiel GmbH"},
}

func TestLookup(t *testing.T) {
	all := geoiptest.Write(t, testNetworks)
	// A City database that knows fewer networks than the Country one: the
	// country then comes from the Country database.
	cityOnlyAU := geoiptest.WriteFile(t, geoiptest.TypeCity, testNetworks[:1])

	tests := []struct {
		name   string
		opts   Options
		loaded []string
		ip     string
		want   risk.GeoInfo
	}{
		{
			name: "all databases", opts: Options{CountryDB: all.Country, CityDB: all.City, ASNDB: all.ASN},
			loaded: []string{KindCountry, KindCity, KindASN},
			ip:     "192.0.2.10",
			want:   risk.GeoInfo{Country: "AU", City: "Sydney", Lat: -33.87, Lon: 151.21, HasLocation: true, ASN: 64500, ASNOrg: "Example Telecom AU"},
		},
		{
			name: "ipv6", opts: Options{CityDB: all.City, ASNDB: all.ASN},
			loaded: []string{KindCity, KindASN},
			ip:     "2001:db8:1:2::3",
			want:   risk.GeoInfo{Country: "DE", City: "Berlin", Lat: 52.52, Lon: 13.40, HasLocation: true, ASN: 64502, ASNOrg: "Beispiel GmbH"},
		},
		{
			name: "ipv4-mapped ipv6", opts: Options{CityDB: all.City},
			loaded: []string{KindCity},
			ip:     "::ffff:198.51.100.7",
			want:   risk.GeoInfo{Country: "GB", City: "London", Lat: 51.51, Lon: -0.13, HasLocation: true},
		},
		{
			name: "network without location", opts: Options{CityDB: all.City, ASNDB: all.ASN},
			loaded: []string{KindCity, KindASN},
			ip:     "203.0.113.5",
			want:   risk.GeoInfo{Country: "US"},
		},
		{
			name: "country database only", opts: Options{CountryDB: all.Country},
			loaded: []string{KindCountry},
			ip:     "198.51.100.7",
			want:   risk.GeoInfo{Country: "GB"},
		},
		{
			name: "country falls back to the Country database", opts: Options{CountryDB: all.Country, CityDB: cityOnlyAU},
			loaded: []string{KindCountry, KindCity},
			ip:     "198.51.100.7",
			want:   risk.GeoInfo{Country: "GB"},
		},
		{
			name: "ASN database only", opts: Options{ASNDB: all.ASN},
			loaded: []string{KindASN},
			ip:     "198.51.100.7",
			want:   risk.GeoInfo{ASN: 64501, ASNOrg: "Example Broadband"},
		},
		{
			name: "unknown address", opts: Options{CountryDB: all.Country, CityDB: all.City, ASNDB: all.ASN},
			loaded: []string{KindCountry, KindCity, KindASN},
			ip:     "203.0.113.200",
		},
		{
			name: "no databases", opts: Options{},
			ip: "192.0.2.10",
		},
		{
			name: "invalid address", opts: Options{CountryDB: all.Country},
			loaded: []string{KindCountry},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Open(tt.opts)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { _ = r.Close() })
			if got := r.Loaded(); !slices.Equal(got, tt.loaded) {
				t.Errorf("Loaded() = %q, want %q", got, tt.loaded)
			}
			var ip netip.Addr
			if tt.ip != "" {
				ip = netip.MustParseAddr(tt.ip)
			}
			if got := r.Lookup(ip); got != tt.want {
				t.Errorf("Lookup(%s) = %+v, want %+v", tt.ip, got, tt.want)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	all := geoiptest.Write(t, testNetworks)
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{"missing file", Options{CountryDB: filepath.Join(t.TempDir(), "nope.mmdb")}, "country database"},
		{"ASN database as city", Options{CountryDB: all.Country, CityDB: all.ASN}, "holds a GeoLite2-ASN database"},
		{"country database as ASN", Options{ASNDB: all.Country}, "holds a GeoLite2-Country database"},
		{"not a database", Options{CityDB: writeJunk(t)}, "city database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Open(tt.opts)
			if err == nil {
				_ = r.Close()
				t.Fatal("Open succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

func writeJunk(t *testing.T) string {
	t.Helper()
	b, err := geoiptest.Build(geoiptest.TypeCity, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "junk.mmdb")
	return writeFile(t, path, b[len(b)/2:])
}

func TestOpenBytes(t *testing.T) {
	country, err := geoiptest.Build(geoiptest.TypeCountry, testNetworks)
	if err != nil {
		t.Fatal(err)
	}
	asn, err := geoiptest.Build(geoiptest.TypeASN, testNetworks)
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenBytes(Bytes{Country: country, ASN: asn})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, want := r.Loaded(), []string{KindCountry, KindASN}; !slices.Equal(got, want) {
		t.Errorf("Loaded() = %q, want %q", got, want)
	}
	want := risk.GeoInfo{Country: "AU", ASN: 64500, ASNOrg: "Example Telecom AU"}
	if got := r.Lookup(netip.MustParseAddr("192.0.2.1")); got != want {
		t.Errorf("Lookup = %+v, want %+v", got, want)
	}
}

func TestOpenDemo(t *testing.T) {
	r, err := OpenDemo()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, want := r.Loaded(), []string{KindCountry}; !slices.Equal(got, want) {
		t.Errorf("Loaded() = %q, want %q", got, want)
	}
	tests := []struct{ ip, country string }{
		{"192.0.2.1", "AU"},
		{"198.51.100.200", "GB"},
		{"203.0.113.9", "US"},
		{"2001:db8::1", "DE"},
		{"2001:db8:ffff::1", "DE"},
		{"::ffff:203.0.113.9", "US"},
		{"8.8.8.8", ""},
		{"2001:db9::1", ""},
	}
	for _, tt := range tests {
		if got := r.Lookup(netip.MustParseAddr(tt.ip)); got != (risk.GeoInfo{Country: tt.country}) {
			t.Errorf("Lookup(%s) = %+v, want country %q only", tt.ip, got, tt.country)
		}
	}
}

// TestDemoUpToDate fails when the demo database files differ from what the
// generator's table produces: run go generate ./risk/geoip.
func TestDemoUpToDate(t *testing.T) {
	want, err := geoiptest.Build(geoiptest.TypeCountry, geoiptest.DemoNetworks)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(demoCountry, want) {
		t.Error("embedded demo-country.mmdb is stale; run go generate ./risk/geoip")
	}
	if got := readFile(t, "../../testdata/geoip/demo-country.mmdb"); !slices.Equal(got, want) {
		t.Error("testdata/geoip/demo-country.mmdb is stale; run go generate ./risk/geoip")
	}
}

func TestCloseTwiceAndNil(t *testing.T) {
	r, err := OpenDemo()
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := r.Loaded(); len(got) != 0 {
		t.Errorf("Loaded() after Close = %q", got)
	}
	var nilReader *Reader
	if got := nilReader.Lookup(netip.MustParseAddr("192.0.2.1")); got != (risk.GeoInfo{}) {
		t.Errorf("nil Reader Lookup = %+v", got)
	}
}

func BenchmarkLookup(b *testing.B) {
	p := geoiptest.Write(b, testNetworks)
	r, err := Open(Options{CountryDB: p.Country, CityDB: p.City, ASNDB: p.ASN})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	ip := netip.MustParseAddr("192.0.2.10")
	b.ReportAllocs()
	for b.Loop() {
		r.Lookup(ip)
	}
}
