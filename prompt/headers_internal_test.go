package prompt

import (
	"crypto/tls"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stepup-auth/stepup/engine"
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

// TestFailPages: each refusal of a page open says what happened with the
// matching status: a send limit asks to wait (with Retry-After), the SMS
// kill switch or a store out of reach says the service is unavailable, and
// only an internal error is "Something went wrong".
func TestFailPages(t *testing.T) {
	h := New(&openRecorder{}, Options{})
	for _, tc := range []struct {
		err        error
		status     int
		title      string
		retryAfter string
	}{
		{engine.E(engine.KindRateLimited, "rate_limited", "wait").With("retry_after", 42), 429, "Please wait a moment", "42"},
		{engine.E(engine.KindUnavailable, "sms_disabled", "off"), 503, "Temporarily unavailable", ""},
		{engine.ErrPromptExpired, 410, "This page has expired", ""},
		{engine.ErrPromptNotFound, 404, "Page not found", ""},
		{errors.New("boom"), 500, "Something went wrong", ""},
	} {
		w := httptest.NewRecorder()
		h.fail(w, httptest.NewRequest("GET", "/prompt/pr_x", nil), tc.err)
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.title) || w.Header().Get("Retry-After") != tc.retryAfter {
			t.Errorf("%v: %d Retry-After %q, want %d %q %q:\n%s", tc.err, w.Code, w.Header().Get("Retry-After"), tc.status, tc.title, tc.retryAfter, w.Body)
		}
	}
}
