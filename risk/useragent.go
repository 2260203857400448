package risk

import (
	"strings"
	"sync"

	"github.com/ua-parser/uap-go/uaparser"
)

// Device types reported in [UserAgent.DeviceType] and the "ua.device" level.
const (
	DeviceDesktop = "desktop"
	DeviceMobile  = "mobile"
	DeviceTablet  = "tablet"
	DeviceBot     = "bot"
	DeviceOther   = "other"
)

// maxParsedUA bounds the part of a user-agent string handed to the regex
// parser: real user agents are a few hundred bytes, and regex matching is
// linear in the input, so a megabyte header must not cost a megabyte scan
// per pattern. The full string still feeds the "ua.full" level.
const maxParsedUA = 1024

// uaCacheSize is the number of distinct user agents whose parse results are
// kept. A tenant's logins concentrate on few user agents, and an uncached
// parse runs hundreds of regular expressions (about a millisecond).
const uaCacheSize = 8192

// uaParser compiles the uap-core regexes (about 60 ms) on first use rather
// than at package init, so importing the package stays free. Call WarmUp
// at startup to pay that cost before the first request.
var uaParser = sync.OnceValue(func() *uaparser.Parser {
	p, err := uaparser.New(uaparser.WithCacheSize(uaCacheSize))
	if err != nil { // only when the embedded regexes are malformed
		panic("risk: ua-parser: " + err.Error())
	}
	return p
})

// WarmUp compiles the user-agent parser's regular expressions now instead
// of on the first call to [Extract] or [ParseUserAgent].
func WarmUp() { uaParser() }

// UserAgent is what the scorer and the device list need from a user-agent
// string: browser and OS family with their major versions, and a coarse
// device type.
type UserAgent struct {
	BrowserFamily string // "Chrome", "Mobile Safari", "Firefox"; "Other" when unknown
	BrowserMajor  string // "125"; empty when unknown
	OSFamily      string // "Windows", "iOS", "Mac OS X"; "Other" when unknown
	OSMajor       string // "10", "17"; empty when unknown
	DeviceType    string // one of DeviceDesktop … DeviceOther
}

// Browser returns the browser family and major version, as in "Chrome 125".
func (u UserAgent) Browser() string { return joinVersion(u.BrowserFamily, u.BrowserMajor) }

// OS returns the operating system family and major version, as in
// "Windows 10".
func (u UserAgent) OS() string { return joinVersion(u.OSFamily, u.OSMajor) }

// String describes the user agent for people, as in "Chrome on Windows".
func (u UserAgent) String() string { return u.BrowserFamily + " on " + u.OSFamily }

func joinVersion(family, major string) string {
	if major == "" {
		return family
	}
	return family + " " + major
}

// ParseUserAgent parses a User-Agent header: browser and OS with
// ua-parser (uap-core regexes), the device type with the token heuristics
// browsers vendors document (see deviceType). Results for recently seen
// strings come from a bounded cache.
func ParseUserAgent(s string) UserAgent {
	if len(s) > maxParsedUA {
		s = s[:maxParsedUA]
	}
	p := uaParser()
	// The parser's Parse method spawns three goroutines per call and runs
	// the device regexes, which cost as much as the browser ones (about
	// 0.6 ms uncached) and are not needed for a device type.
	ua, os := p.ParseUserAgent(s), p.ParseOs(s)
	return UserAgent{
		BrowserFamily: ua.Family,
		BrowserMajor:  ua.Major,
		OSFamily:      os.Family,
		OSMajor:       os.Major,
		DeviceType:    deviceType(s, os.Family),
	}
}

// deviceType classifies a user agent as a bot, tablet, mobile, desktop or
// other device, using the tokens browsers document for the purpose
// ("Mobile", "Tablet", "iPad"; Android tablets omit "Mobile") and the
// parsed OS family.
func deviceType(s, osFamily string) string {
	switch {
	case looksAutomated(s):
		return DeviceBot
	case strings.Contains(s, "iPad") || strings.Contains(s, "Tablet") ||
		strings.Contains(s, "Kindle") || strings.Contains(s, "Silk/"):
		return DeviceTablet
	case osFamily == "Android" && !strings.Contains(s, "Mobile"):
		return DeviceTablet
	case strings.Contains(s, "iPhone") || strings.Contains(s, "iPod") ||
		strings.Contains(s, "Mobi") || mobileOS[osFamily]:
		return DeviceMobile
	case desktopOS[osFamily] || strings.HasPrefix(osFamily, "Windows"):
		return DeviceDesktop
	default:
		return DeviceOther
	}
}

// automationTokens mark crawlers, headless browsers and scripting HTTP
// clients. Native apps' HTTP stacks (okhttp, CFNetwork) are deliberately
// absent: host apps pass their users' app user agents.
var automationTokens = []string{
	"crawl", "spider", "slurp", "scrapy", "headless", "phantomjs", "selenium",
	"curl/", "wget/", "python-requests", "python-urllib", "aiohttp", "go-http-client",
	"libwww-perl", "java/", "httpclient", "node-fetch", "axios/",
}

// looksAutomated reports crawler and script user agents. Besides the
// tokens it catches words ending in "bot" (Googlebot, AdsBot-Google,
// bingbot) but not the phone brand Cubot.
func looksAutomated(s string) bool {
	l := strings.ToLower(s)
	for _, tok := range automationTokens {
		if strings.Contains(l, tok) {
			return true
		}
	}
	for i := 0; ; {
		j := strings.Index(l[i:], "bot")
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+3
		wordEnd := end == len(l) || l[end] < 'a' || l[end] > 'z'
		if wordEnd && !strings.HasSuffix(l[:start], "cu") {
			return true
		}
		i = end
	}
}

var mobileOS = map[string]bool{
	"iOS": true, "Android": true, "Windows Phone": true, "BlackBerry OS": true,
	"KaiOS": true, "Symbian OS": true, "Firefox OS": true, "Tizen": true,
	"HarmonyOS": true, "Sailfish": true, "webOS": true,
}

var desktopOS = map[string]bool{
	"Mac OS X": true, "macOS": true, "Linux": true, "Ubuntu": true, "Debian": true,
	"Fedora": true, "Red Hat": true, "SUSE": true, "Arch Linux": true, "Linux Mint": true,
	"Chrome OS": true, "FreeBSD": true, "OpenBSD": true, "NetBSD": true,
	"Solaris": true, "Gentoo": true, "Mageia": true, "CentOS": true,
}
