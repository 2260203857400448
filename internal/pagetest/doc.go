// Package pagetest drives stepup's hosted prompt pages over plain HTTP as
// their script does — opening a page (claiming its prompt, keeping its
// session cookie and CSRF token), calling its JSON endpoints, posting its
// forms — and answers passkey ceremonies with a software authenticator.
// Tests that need a real browser use chromedp instead.
package pagetest
