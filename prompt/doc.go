// Package prompt serves the hosted verification pages a host app sends a
// user's browser to (POST /v1/prompts): the login challenge (a code,
// remember this device, a new code, another method, a passkey), the
// enrolment of a first factor (text message, authenticator app, passkey)
// and the user's settings (add a factor, change the phone number, new
// backup codes, passkeys), with the WebAuthn ceremonies of passkeys in a
// little plain JavaScript.
//
// It is a thin shell over engine.Prompts, which owns every rule: which
// prompt a browser may act on, what it may do, what the host gets back.
// Pages are html/template with embedded assets, a strict
// Content-Security-Policy (no inline script, no third-party request but
// the tenant's own logo), frame-ancestors 'none', and a CSRF token bound
// to the browser's prompt session on every action. It must not decide
// anything, talk to Redis, or show a secret other than the backup codes
// the user is given once and the key of an authenticator app being set
// up (never logged).
package prompt
