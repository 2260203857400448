package evalset

import (
	"fmt"
	"math/rand/v2"
	"time"
)

// Platform is a device's operating system and form.
type Platform uint8

// The platforms of the generated devices.
const (
	Windows Platform = iota
	Mac
	Linux
	IPhone
	Android
	IPad
)

// Browser is a browser family.
type Browser uint8

// The browser families of the generated devices.
const (
	Chrome Browser = iota
	Edge
	Firefox
	Safari
)

// releaseEvery is the time between two browser releases: a new major
// version for Chrome, Edge and Firefox, a new minor one for Safari, whose
// major version (with the OS on iPhone and iPad) changes every September.
const releaseEvery = 42 * 24 * time.Hour

// releaseEpoch is when Chrome 133, Firefox 135 and Safari 18.3 were current.
var releaseEpoch = time.Date(2025, 2, 4, 0, 0, 0, 0, time.UTC)

// browserVersion is the version of browser b released by time t: the
// number of releases since releaseEpoch added to the epoch's version.
// Safari counts minors within its yearly major.
func browserVersion(b Browser, t time.Time) (major, minor int) {
	n := int(t.Sub(releaseEpoch).Hours()) / int(releaseEvery.Hours())
	if t.Before(releaseEpoch) {
		n-- // round towards the past
	}
	switch b {
	case Firefox:
		return 135 + n, 0
	case Safari:
		y := t.Year()
		sept := time.Date(y, 9, 16, 0, 0, 0, 0, time.UTC)
		if t.Before(sept) {
			y--
			sept = time.Date(y, 9, 16, 0, 0, 0, 0, time.UTC)
		}
		return 18 + y - 2024, min(int(t.Sub(sept)/releaseEvery), 7)
	default: // Chrome, Edge
		return 133 + n, 0
	}
}

// latestMinor is the newest Safari minor version of major released by t.
func latestMinor(major int, t time.Time) int {
	if m, n := browserVersion(Safari, t); m == major {
		return n
	}
	return 7 // a past major: browserVersion caps its minors there
}

// version is what a user-agent string says about versions: the browser's,
// and the OS's where the string still reveals it (iOS; Android in
// Firefox).
type version struct {
	major, minor     int
	osMajor, osMinor int
}

// installed returns the versions a device runs at time t when it installs
// each release lag after it comes out.
func installed(p Platform, b Browser, t time.Time, lag time.Duration, android int) version {
	var v version
	v.major, v.minor = browserVersion(b, t.Add(-lag))
	switch p {
	case IPhone, IPad:
		v.osMajor, v.osMinor = browserVersion(Safari, t.Add(-lag))
	case Android:
		v.osMajor = android
	}
	return v
}

// userAgent returns the User-Agent header of browser b at version v on
// platform p. The strings follow what the browsers send today, including
// the frozen parts (Windows NT 10.0, Mac OS X 10_15_7, Android 10; K) of
// the reduced user agent, so the full string changes only with the
// browser's (and on iPhone the OS's) version.
func userAgent(p Platform, b Browser, v version) string {
	major, minor := v.major, v.minor
	const (
		webkit = "AppleWebKit/537.36 (KHTML, like Gecko)"
		apple  = "AppleWebKit/605.1.15 (KHTML, like Gecko)"
	)
	chrome := fmt.Sprintf("Chrome/%d.0.0.0", major)
	switch p {
	case Windows:
		switch b {
		case Firefox:
			return fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:%d.0) Gecko/20100101 Firefox/%d.0", major, major)
		case Edge:
			return fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0; Win64; x64) %s %s Safari/537.36 Edg/%d.0.0.0", webkit, chrome, major)
		default:
			return fmt.Sprintf("Mozilla/5.0 (Windows NT 10.0; Win64; x64) %s %s Safari/537.36", webkit, chrome)
		}
	case Mac, IPad: // iPadOS Safari asks for desktop sites with the Mac user agent
		switch b {
		case Firefox:
			return fmt.Sprintf("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:%d.0) Gecko/20100101 Firefox/%d.0", major, major)
		case Safari:
			return fmt.Sprintf("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) %s Version/%d.%d Safari/605.1.15", apple, major, minor)
		default:
			return fmt.Sprintf("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) %s %s Safari/537.36", webkit, chrome)
		}
	case Linux:
		if b == Firefox {
			return fmt.Sprintf("Mozilla/5.0 (X11; Linux x86_64; rv:%d.0) Gecko/20100101 Firefox/%d.0", major, major)
		}
		return fmt.Sprintf("Mozilla/5.0 (X11; Linux x86_64) %s %s Safari/537.36", webkit, chrome)
	case IPhone:
		if b == Chrome {
			return fmt.Sprintf("Mozilla/5.0 (iPhone; CPU iPhone OS %d_%d like Mac OS X) %s CriOS/%d.0.6943.84 Mobile/15E148 Safari/604.1", v.osMajor, v.osMinor, apple, major)
		}
		return fmt.Sprintf("Mozilla/5.0 (iPhone; CPU iPhone OS %d_%d like Mac OS X) %s Version/%d.%d Mobile/15E148 Safari/604.1", v.osMajor, v.osMinor, apple, major, minor)
	case Android:
		if b == Firefox {
			return fmt.Sprintf("Mozilla/5.0 (Android %d; Mobile; rv:%d.0) Gecko/%d.0 Firefox/%d.0", v.osMajor, major, major, major)
		}
		return fmt.Sprintf("Mozilla/5.0 (Linux; Android 10; K) %s %s Mobile Safari/537.36", webkit, chrome)
	}
	return "Mozilla/5.0"
}

// platformBrowsers is the browser mix of each platform.
var platformBrowsers = map[Platform][]weighted[Browser]{
	Windows: {{Chrome, 65}, {Edge, 20}, {Firefox, 15}},
	Mac:     {{Safari, 50}, {Chrome, 40}, {Firefox, 10}},
	Linux:   {{Chrome, 60}, {Firefox, 40}},
	IPhone:  {{Safari, 90}, {Chrome, 10}},
	Android: {{Chrome, 90}, {Firefox, 10}},
	IPad:    {{Safari, 100}},
}

// commonPlatforms is the platform mix of the logins of a typical consumer
// service, used by the VPN attacker to look ordinary.
var commonPlatforms = []weighted[Platform]{{Windows, 40}, {IPhone, 25}, {Android, 20}, {Mac, 15}}

// commonUserAgent returns a current user agent drawn from the common
// platform and browser mix.
func commonUserAgent(r *rand.Rand, t time.Time) string {
	p := pick(r, commonPlatforms)
	b := pick(r, platformBrowsers[p])
	return userAgent(p, b, installed(p, b, t, 0, 14))
}

// scriptUserAgents are what credential-stuffing scripts that do not bother
// to pretend send.
var scriptUserAgents = []string{
	"python-requests/2.32.3",
	"Go-http-client/2.0",
	"curl/8.7.1",
	"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36",
}

// randomUserAgent returns a random browser on a random platform, often out
// of date, and now and then a script's user agent: the naive attacker.
func randomUserAgent(r *rand.Rand, t time.Time) string {
	if r.Float64() < 0.05 {
		return scriptUserAgents[r.IntN(len(scriptUserAgents))]
	}
	p := Platform(r.IntN(int(IPad) + 1))
	bs := platformBrowsers[p]
	b := bs[r.IntN(len(bs))].v
	// Anything from current to about three years old.
	return userAgent(p, b, installed(p, b, t, time.Duration(r.IntN(26))*releaseEvery, 10+r.IntN(6)))
}

// weighted is a value with a relative weight.
type weighted[T any] struct {
	v T
	w float64
}

// pick draws a value with probability proportional to its weight.
func pick[T any](r *rand.Rand, ws []weighted[T]) T {
	var sum float64
	for _, x := range ws {
		sum += x.w
	}
	u := r.Float64() * sum
	for _, x := range ws {
		if u < x.w {
			return x.v
		}
		u -= x.w
	}
	return ws[len(ws)-1].v
}
