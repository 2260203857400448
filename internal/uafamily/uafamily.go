package uafamily

import "strings"

// Neutral words for a family outside the allow-lists.
const (
	UnknownBrowser = "Unknown browser"
	OtherOS        = "Other"
)

// maxMajor bounds a major version's digits; real ones have at most four.
const maxMajor = 5

// browsers are the browser families of uap-core that people use or
// recognise.
var browsers = set(
	"Chrome", "Chrome Mobile", "Chrome Mobile iOS", "Chrome Mobile WebView", "Chromium",
	"HeadlessChrome", "Firefox", "Firefox Mobile", "Firefox iOS", "Firefox Focus",
	"Safari", "Mobile Safari", "Mobile Safari UI/WKWebView", "Edge", "Edge Mobile",
	"IE", "IE Mobile", "Opera", "Opera Mobile", "Opera Mini", "Opera Touch",
	"Samsung Internet", "UC Browser", "Yandex Browser", "Brave", "Vivaldi", "Silk",
	"Android", "DuckDuckGo Mobile", "MiuiBrowser", "Huawei Browser", "QQ Browser",
	"QQ Browser Mobile", "Baidu Browser", "Sogou Explorer", "Maxthon", "Puffin",
	"Pale Moon", "SeaMonkey", "Waterfox", "Epiphany", "Konqueror", "Thunderbird",
	"Facebook", "Instagram", "WeChat", "LINE", "Electron", "WebKit Nightly",
	"Googlebot", "bingbot", "YandexBot", "Applebot", "DuckDuckBot", "Baiduspider",
	"curl", "Wget", "Python Requests", "Python-urllib", "okhttp", "Go-http-client",
	"Apache-HttpClient", "Java", "CFNetwork", "aiohttp", "axios", "node-fetch",
)

// systems are the operating-system families of uap-core that people use
// or recognise.
var systems = set(
	"Windows", "Windows XP", "Windows Vista", "Windows 7", "Windows 8", "Windows 8.1",
	"Windows 10", "Windows 11", "Windows RT", "Windows RT 8.1", "Windows Phone", "Windows Mobile",
	"Mac OS X", "macOS", "iOS", "iPadOS", "watchOS", "tvOS", "Android", "Chrome OS",
	"Linux", "Ubuntu", "Debian", "Fedora", "Red Hat", "SUSE", "openSUSE", "Arch Linux",
	"Linux Mint", "Gentoo", "Mageia", "CentOS", "FreeBSD", "OpenBSD", "NetBSD", "Solaris",
	"BlackBerry OS", "BlackBerry Tablet OS", "KaiOS", "Symbian OS", "Firefox OS", "Tizen",
	"HarmonyOS", "Sailfish", "webOS", "Fire OS", "Kindle",
)

func set(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// Browser returns the browser label family, or "family major", when family
// is a known browser and major a short number; UnknownBrowser otherwise.
// An empty family stays empty (nothing is known, nothing is shown).
func Browser(family, major string) string { return label(browsers, family, major, UnknownBrowser) }

// OS is Browser for operating systems; an unknown family is OtherOS.
func OS(family, major string) string { return label(systems, family, major, OtherOS) }

// CleanBrowser re-checks a label Browser made ("Chrome 124"): anything not
// of that shape becomes UnknownBrowser. Renderers call it on labels from
// stored events, which older versions wrote unchecked.
func CleanBrowser(s string) string { return clean(browsers, s, UnknownBrowser) }

// CleanOS is CleanBrowser for operating-system labels.
func CleanOS(s string) string { return clean(systems, s, OtherOS) }

func label(known map[string]bool, family, major, neutral string) string {
	if family == "" {
		return ""
	}
	if !known[family] {
		return neutral
	}
	if !isMajor(major) {
		return family
	}
	return family + " " + major
}

func clean(known map[string]bool, s, neutral string) string {
	if s == "" || s == neutral {
		return s
	}
	if known[s] {
		return s
	}
	if i := strings.LastIndexByte(s, ' '); i > 0 && isMajor(s[i+1:]) && known[s[:i]] {
		return s
	}
	return neutral
}

func isMajor(s string) bool {
	if s == "" || len(s) > maxMajor {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
