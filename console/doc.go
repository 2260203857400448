// Package console is stepup's web console for account managers: sign-in
// with a manager key, the overview charts, the policy form, user lookup and
// reset, the audit log with a live tail, and the operations page, served
// under /console as server-rendered HTML with its templates, style sheet
// and one small script embedded in the binary.
//
// It owns the console's sessions (an opaque id in a cookie, the session
// kept server-side through a small store interface declared here, with an
// idle and an absolute expiry), CSRF tokens, the security headers, and the
// plain words the pages use. Everything it changes goes through the engine
// with the manager key's label as the audit actor, as the API does.
//
// It must not hold domain rules (validation is the engine's, shown next to
// the field it names), read Redis, or log a key or a session id.
package console
