package engine

import "testing"

// TestReturnURLAllowed attacks the return_url match: nothing may leave the
// registered scheme, host, port and path prefix once a browser resolves it.
func TestReturnURLAllowed(t *testing.T) {
	reg := []string{"https://app.example/cb", "https://app.example:8443/dir/"}
	for _, tc := range []struct {
		target string
		ok     bool
	}{
		{"https://app.example/cb", true},
		{"https://app.example/cb/x?y=1", true},
		{"https://APP.example/cb", true},
		{"https://app.example:8443/dir/x", true},
		{"https://app.example/cbx", false},
		{"http://app.example/cb", false},
		{"https://app.example:444/cb", false},
		{"https://app.example./cb", false},
		{"https://app.example@evil.example/cb", false},
		{"https://app.example/cb/../evil", false},
		{"https://app.example/cb/..", false},
		{"https://app.example/cb/%2e%2e/evil", false},   // the browser resolves %2e%2e as ..
		{"https://app.example/cb/.%2E/evil", false},     // so does a half-encoded one
		{"https://app.example/cb/%2E%2E%2Fevil", false}, // an encoded slash after it
		{"https://app.example/cb/%2e%2e", false},
		{"https://app.example/cb/..%5Cevil", false}, // a backslash some servers read as /
		{"https://app.example/cb/..;/evil", false},  // a path parameter Tomcat and Jetty strip: ".."
		{"https://app.example/cb/.;x/evil", false},
		{"https://app.example/cb/a;v=1", true},
		{"https://app.example/cb/%5c%5cevil.example", false},
		{"https://app.example:8443/dir/%2e%2e/admin", false},
		{"https://app.example/cb#x", false},
		{"https://evil.example/cb", false},
	} {
		if got := returnURLAllowed(reg, tc.target); got != tc.ok {
			t.Errorf("returnURLAllowed(%q) = %v, want %v", tc.target, got, tc.ok)
		}
	}
}
