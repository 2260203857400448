package risk

import "testing"

func TestParseUserAgent(t *testing.T) {
	tests := []struct {
		name string
		ua   string
		want UserAgent
	}{
		{"chrome windows", uaChromeWin, UserAgent{"Chrome", "125", "Windows", "10", DeviceDesktop}},
		{"firefox linux", uaFirefoxLinux, UserAgent{"Firefox", "126", "Linux", "", DeviceDesktop}},
		{"safari mac", uaSafariMac, UserAgent{"Safari", "17", "Mac OS X", "10", DeviceDesktop}},
		{"edge windows", uaEdgeWin, UserAgent{"Edge", "125", "Windows", "10", DeviceDesktop}},
		{"iphone", uaIPhone, UserAgent{"Mobile Safari", "17", "iOS", "17", DeviceMobile}},
		{"android phone", uaChromeAndroid, UserAgent{"Chrome Mobile", "125", "Android", "14", DeviceMobile}},
		{"ipad", uaIPad, UserAgent{"Mobile Safari", "17", "iOS", "17", DeviceTablet}},
		{"android tablet", uaAndroidTablet, UserAgent{"Chrome", "125", "Android", "13", DeviceTablet}},
		{"googlebot", uaGooglebot, UserAgent{"Googlebot", "2", "Other", "", DeviceBot}},
		{"curl", uaCurl, UserAgent{"curl", "8", "Other", "", DeviceBot}},
		{"headless chrome", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/125.0.0.0 Safari/537.36", UserAgent{"HeadlessChrome", "125", "Linux", "", DeviceBot}},
		{"bingbot", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", UserAgent{"bingbot", "2", "Other", "", DeviceBot}},
		{"cubot phone is not a bot", "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Mobile Safari/537.36", UserAgent{"Chrome Mobile", "125", "Android", "10", DeviceMobile}},
		{"kindle", "Mozilla/5.0 (Linux; Android 9; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) Silk/125.3.1 like Chrome/125.0.0.0 Safari/537.36", UserAgent{"Amazon Silk", "125", "Android", "9", DeviceTablet}},
		{"native app", "MyBank/4.2 (iPhone; iOS 17.5; Scale/3.00)", UserAgent{"Mobile Safari UI/WKWebView", "", "iOS", "17", DeviceMobile}},
		{"empty", "", UserAgent{"Other", "", "Other", "", DeviceOther}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseUserAgent(tt.ua); got != tt.want {
				t.Errorf("ParseUserAgent() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestUserAgentStrings(t *testing.T) {
	u := UserAgent{BrowserFamily: "Chrome", BrowserMajor: "125", OSFamily: "Linux", DeviceType: DeviceDesktop}
	if got, want := u.Browser(), "Chrome 125"; got != want {
		t.Errorf("Browser() = %q, want %q", got, want)
	}
	if got, want := u.OS(), "Linux"; got != want {
		t.Errorf("OS() = %q, want %q", got, want)
	}
	if got, want := u.String(), "Chrome on Linux"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestParseUserAgentLongInput(t *testing.T) {
	long := uaChromeWin + string(make([]byte, 1<<20))
	if got := ParseUserAgent(long); got.BrowserFamily != "Chrome" {
		t.Errorf("ParseUserAgent(1 MiB) family = %q, want Chrome", got.BrowserFamily)
	}
}
