package engine

import "testing"

// TestNewWebAuthnRelyingParty: a domain (localhost included) is a relying
// party; an IP address or no public URL turns passkeys off instead of
// stopping stepupd.
func TestNewWebAuthnRelyingParty(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want bool
	}{
		{"https://auth.example.com", true},
		{"http://localhost:8080", true},
		{"http://127.0.0.1:8080", false},
		{"http://[::1]:8080", false},
		{"", false},
	} {
		wa, err := newWebAuthn(tc.url)
		if err != nil {
			t.Errorf("%q: %v", tc.url, err)
		}
		if (wa != nil) != tc.want {
			t.Errorf("%q: relying party %v, want %v", tc.url, wa != nil, tc.want)
		}
	}
}
