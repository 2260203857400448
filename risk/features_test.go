package risk

import (
	"math"
	"net/netip"
	"testing"
	"time"
)

func TestExtractLevels(t *testing.T) {
	gb := GeoInfo{Country: "gb"}
	tests := []struct {
		name string
		in   Input
		opts Options
		want map[string]string // level → value; levels absent from want must be absent
	}{
		{
			name: "ipv4 /24 with device",
			in:   Input{IP: netip.MustParseAddr("198.51.100.7"), UserAgent: uaChromeWin, DeviceID: "d1", Geo: gb},
			want: map[string]string{
				LevelIPAddr: "198.51.100.7", LevelIPNet: "198.51.100.0/24", LevelIPBlock: "198.51.0.0/16", LevelIPCountry: "GB",
				LevelUAFull: uaChromeWin, LevelUABrowser: "Chrome 125", LevelUAOS: "Windows 10", LevelUADevice: DeviceDesktop,
				LevelDeviceID: "d1",
			},
		},
		{
			name: "ipv6 /64, unknown country, no device",
			in:   Input{IP: netip.MustParseAddr("2001:db8:1:2:3:4:5:6"), UserAgent: uaIPhone},
			want: map[string]string{
				LevelIPAddr: "2001:db8:1:2:3:4:5:6", LevelIPNet: "2001:db8:1:2::/64", LevelIPBlock: "2001:db8::/32", LevelIPCountry: UnknownCountry,
				LevelUAFull: uaIPhone, LevelUABrowser: "Mobile Safari 17", LevelUAOS: "iOS 17", LevelUADevice: DeviceMobile,
			},
		},
		{
			name: "asn is a level between the prefix and the country",
			in:   Input{IP: netip.MustParseAddr("203.0.113.9"), Geo: GeoInfo{Country: "US", ASN: 64500, ASNOrg: "Example"}},
			want: map[string]string{
				LevelIPAddr: "203.0.113.9", LevelIPNet: "203.0.113.0/24", LevelIPBlock: "203.0.0.0/16", LevelIPASN: "AS64500", LevelIPCountry: "US",
				LevelUAFull: "", LevelUABrowser: "Other", LevelUAOS: "Other", LevelUADevice: DeviceOther,
			},
		},
		{
			name: "mapped ipv4 and zone are normalised",
			in:   Input{IP: netip.MustParseAddr("::ffff:192.0.2.1"), UserAgent: uaCurl},
			want: map[string]string{
				LevelIPAddr: "192.0.2.1", LevelIPNet: "192.0.2.0/24", LevelIPBlock: "192.0.0.0/16", LevelIPCountry: UnknownCountry,
				LevelUAFull: uaCurl, LevelUABrowser: "curl 8", LevelUAOS: "Other", LevelUADevice: DeviceBot,
			},
		},
		{
			name: "custom prefixes",
			in:   Input{IP: netip.MustParseAddr("fe80::1%eth0")},
			opts: Options{IPv6Prefix: 48},
			want: map[string]string{
				LevelIPAddr: "fe80::1", LevelIPNet: "fe80::/48", LevelIPBlock: "fe80::/32", LevelIPCountry: UnknownCountry,
				LevelUAFull: "", LevelUABrowser: "Other", LevelUAOS: "Other", LevelUADevice: DeviceOther,
			},
		},
		{
			name: "ignored device, /16 network: no narrower block level",
			in:   Input{IP: netip.MustParseAddr("192.0.2.1"), DeviceID: "d1"},
			opts: Options{IPv4Prefix: 16, IgnoreDevice: true},
			want: map[string]string{
				LevelIPAddr: "192.0.2.1", LevelIPNet: "192.0.0.0/16", LevelIPCountry: UnknownCountry,
				LevelUAFull: "", LevelUABrowser: "Other", LevelUAOS: "Other", LevelUADevice: DeviceOther,
			},
		},
		{
			name: "invalid ip drops the ip feature",
			in:   Input{DeviceID: "d1"},
			want: map[string]string{
				LevelUAFull: "", LevelUABrowser: "Other", LevelUAOS: "Other", LevelUADevice: DeviceOther,
				LevelDeviceID: "d1",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			levels := Extract(tt.in, tt.opts).Levels()
			if len(levels) != len(tt.want) {
				t.Fatalf("got %d levels %+v, want %d", len(levels), levels, len(tt.want))
			}
			for _, l := range levels {
				want, ok := tt.want[l.Name]
				if !ok {
					t.Errorf("unexpected level %q", l.Name)
					continue
				}
				if l.Value != want {
					t.Errorf("%s = %q, want %q", l.Name, l.Value, want)
				}
			}
		})
	}
}

func TestExtractLevelOrderAndWeights(t *testing.T) {
	f := Extract(Input{IP: netip.MustParseAddr("192.0.2.1"), UserAgent: uaChromeWin, DeviceID: "d"}, Options{})
	wantOrder := []string{LevelIPAddr, LevelIPNet, LevelIPBlock, LevelIPCountry, LevelUAFull, LevelUABrowser, LevelUAOS, LevelUADevice, LevelDeviceID}
	sums := map[string]float64{}
	levels := f.Levels()
	for i, l := range levels {
		if l.Name != wantOrder[i] {
			t.Errorf("level %d = %s, want %s", i, l.Name, wantOrder[i])
		}
		if l.Name != LevelIPBlock { // shares the network's weight, as the AS does
			sums[l.Feature] += l.Weight
		}
	}
	for feature, s := range sums {
		if math.Abs(s-1) > 1e-9 {
			t.Errorf("weights of %s sum to %v, want 1", feature, s)
		}
	}
	levels[0].Value = "mutated"
	if f.Levels()[0].Value == "mutated" {
		t.Error("Levels() exposes the internal slice")
	}
}

func TestFeaturesPlace(t *testing.T) {
	at := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	f := Extract(Input{IP: netip.MustParseAddr("192.0.2.1"), Geo: GeoInfo{Country: "AU", Lat: -33.9, Lon: 151.2, HasLocation: true}}, Options{})
	p := f.Place(at)
	if p == nil || *p != (Place{At: at, Lat: -33.9, Lon: 151.2, Country: "AU"}) {
		t.Errorf("Place() = %+v", p)
	}
	f = Extract(Input{IP: netip.MustParseAddr("192.0.2.1"), Geo: GeoInfo{Country: "AU"}}, Options{})
	if p := f.Place(at); p != nil {
		t.Errorf("Place() without location = %+v, want nil", p)
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		ok   bool
	}{
		{"zero is defaults", Options{}, true},
		{"custom", Options{IPv4Prefix: 16, IPv6Prefix: 48, UnseenPenalty: 8, FailedPasswordUserThreshold: -1, TravelFactor: -1}, true},
		{"ipv4 prefix too long", Options{IPv4Prefix: 33}, false},
		{"ipv6 prefix negative", Options{IPv6Prefix: -1}, false},
		{"penalty below one", Options{UnseenPenalty: 0.5}, false},
		{"factor below one", Options{FailedChallengeFactor: 0.5}, false},
		{"travel factor below one", Options{TravelFactor: 0.5}, false},
		{"negative speed", Options{TravelSpeedKmh: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.opts.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestExtractConcurrent(t *testing.T) {
	done := make(chan Features)
	for i := range 8 {
		go func() {
			done <- Extract(Input{IP: netip.MustParseAddr("192.0.2.1"), UserAgent: testUAs[i%len(testUAs)]}, Options{})
		}()
	}
	for range 8 {
		if f := <-done; f.UA.BrowserFamily == "" {
			t.Error("empty browser family")
		}
	}
}
