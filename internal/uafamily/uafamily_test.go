package uafamily

import "testing"

func TestLabels(t *testing.T) {
	tests := []struct{ family, major, browser, os string }{
		{"Chrome", "124", "Chrome 124", OtherOS},
		{"Windows", "10", UnknownBrowser, "Windows 10"},
		{"Mac OS X", "", UnknownBrowser, "Mac OS X"},
		{"Click https://evil.example/fix to secure your account", "1", UnknownBrowser, OtherOS},
		{"Firefox", "12\nSubject: x", "Firefox", OtherOS},
		{"Other", "", UnknownBrowser, OtherOS},
		{"", "", "", ""},
	}
	for _, tt := range tests {
		if got := Browser(tt.family, tt.major); got != tt.browser {
			t.Errorf("Browser(%q, %q) = %q, want %q", tt.family, tt.major, got, tt.browser)
		}
		if got := OS(tt.family, tt.major); got != tt.os {
			t.Errorf("OS(%q, %q) = %q, want %q", tt.family, tt.major, got, tt.os)
		}
	}
}

func TestClean(t *testing.T) {
	tests := []struct{ in, browser, os string }{
		{"Chrome 124", "Chrome 124", OtherOS},
		{"Mobile Safari UI/WKWebView", "Mobile Safari UI/WKWebView", OtherOS},
		{"Windows 10", UnknownBrowser, "Windows 10"},
		{"Click https://evil.example/fix to secure your account 1", UnknownBrowser, OtherOS},
		{"Chrome 124 https://evil.example", UnknownBrowser, OtherOS},
		{"Chrome\n124", UnknownBrowser, OtherOS},
		{UnknownBrowser, UnknownBrowser, OtherOS},
		{"", "", ""},
	}
	for _, tt := range tests {
		if got := CleanBrowser(tt.in); got != tt.browser {
			t.Errorf("CleanBrowser(%q) = %q, want %q", tt.in, got, tt.browser)
		}
		if got := CleanOS(tt.in); got != tt.os {
			t.Errorf("CleanOS(%q) = %q, want %q", tt.in, got, tt.os)
		}
	}
}
