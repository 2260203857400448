package risk

import (
	"net/netip"
	"strconv"
	"testing"
	"time"
)

func BenchmarkExtract(b *testing.B) {
	in := aliceInput(netip.MustParseAddr("81.2.69.200"), uaChromeWin, "alice-laptop", geoGB)
	Extract(in, Options{}) // warm the parser and its cache
	b.ReportAllocs()
	for b.Loop() {
		Extract(in, Options{})
	}
}

// BenchmarkExtractUncachedUA measures a user agent the parser's cache has
// not seen: the cost of ua-parser's regular expressions.
func BenchmarkExtractUncachedUA(b *testing.B) {
	WarmUp()
	in := aliceInput(netip.MustParseAddr("81.2.69.200"), "", "alice-laptop", geoGB)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		in.UserAgent = uaChromeWin + " bench/" + strconv.Itoa(i)
		Extract(in, Options{})
	}
}

func BenchmarkScore(b *testing.B) {
	ft := fixtures[false]()
	si := ft.input("alice", aliceInput(netip.MustParseAddr("1.2.3.4"), uaFirefoxLinux, "stranger", geoAU), tNow)
	si.LastLogin = &Place{At: tNow.Add(-time.Hour), Lat: geoGB.Lat, Lon: geoGB.Lon, Country: "GB"}
	si.FailedPasswordsUser = 10
	b.ReportAllocs()
	for b.Loop() {
		Score(si, Options{})
	}
}
