package prompt

import (
	"crypto/tls"
	"net/http/httptest"
	"testing"
)

// TestPagesSecurityHeaders: every answer of the hosted pages (here a
// prompt that is not found, a forged form and an asset) carries the
// console's security headers, Strict-Transport-Security included where
// the pages are served over TLS (directly, or behind a proxy that
// terminates it: an https public_url). The pages hold a session cookie,
// passkey ceremonies and, while an app is being set up, a TOTP key.
func TestPagesSecurityHeaders(t *testing.T) {
	for _, tc := range []struct {
		name        string
		secure, tls bool
		hsts        bool
	}{
		{"https public_url", true, false, true},
		{"TLS", false, true, true},
		{"plain http", false, false, false},
	} {
		h := New(&openRecorder{}, Options{Secure: tc.secure})
		for _, req := range []struct{ method, path string }{
			{"GET", "/prompt/pr_x"}, {"POST", "/prompt/pr_x/verify"}, {"GET", "/prompt/assets/prompt.js"},
		} {
			r := httptest.NewRequest(req.method, req.path, nil)
			if tc.tls {
				r.TLS = &tls.ConnectionState{}
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			hd := w.Header()
			for k, want := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
				"Referrer-Policy": "no-referrer", "Cross-Origin-Opener-Policy": "same-origin"} {
				if got := hd.Get(k); got != want {
					t.Errorf("%s %s %s: %s %q, want %q", tc.name, req.method, req.path, k, got, want)
				}
			}
			if got := hd.Get("Strict-Transport-Security") != ""; got != tc.hsts {
				t.Errorf("%s %s %s: Strict-Transport-Security %q", tc.name, req.method, req.path, hd.Get("Strict-Transport-Security"))
			}
		}
	}
}
