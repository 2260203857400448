package geoiptest

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestBuild(t *testing.T) {
	tests := []struct {
		name    string
		dbType  string
		nets    []Network
		wantErr string
	}{
		{"country", TypeCountry, DemoNetworks, ""},
		{"city", TypeCity, []Network{{Prefix: "192.0.2.0/24", Country: "AU", City: "Sydney", Lat: -33.9, Lon: 151.2}}, ""},
		{"asn", TypeASN, []Network{{Prefix: "2001:db8::/32", ASN: 64500, ASNOrg: "Example"}}, ""},
		{"empty table", TypeASN, nil, ""},
		{"unknown type", "GeoIP2-Enterprise", nil, "unknown database type"},
		{"bad prefix", TypeCountry, []Network{{Prefix: "192.0.2.1", Country: "AU"}}, `network "192.0.2.1"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Build(tt.dbType, tt.nets)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Build error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(b, []byte("MaxMind.com")) || !bytes.Contains(b, []byte(tt.dbType)) {
				t.Error("output lacks the MaxMind DB metadata")
			}
			again, _ := Build(tt.dbType, tt.nets)
			if !bytes.Equal(b, again) {
				t.Error("Build is not deterministic")
			}
		})
	}
}

func TestWrite(t *testing.T) {
	p := Write(t, DemoNetworks)
	for _, path := range []string{p.Country, p.City, p.ASN} {
		if fi, err := os.Stat(path); err != nil || fi.Size() == 0 {
			t.Errorf("%s: %v", path, err)
		}
	}
}
