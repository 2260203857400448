// Package pagetest drives stepup's hosted prompt pages over plain HTTP as
// their script does — opening a page (claiming its prompt, keeping its
// session cookie and CSRF token), calling its JSON endpoints, posting its
// forms — and plays the user's devices: a software security key for
// passkey ceremonies and an authenticator app for TOTP codes. Tests that
// need a real browser use chromedp instead.
package pagetest
