// Package engine is stepup's domain: tenants and their keys, policy, users
// and their factors, challenges, and the login decision.
//
// It owns every rule of the product contract (SPEC.md), split by flow:
// Tenants (tenants, keys, authentication), Policies (policy, admin actions,
// audit log, digests, alerts), Logins (evaluate: load, the pure decide,
// save), Challenges (verify, with one handler per purpose in purpose.go;
// resend, switch, delivery reports) and Lifecycle (enrolment, phone and
// e-mail changes, disable, backup codes, users, devices, erasure), over a
// shared core. Each flow depends only on the small store interface it
// declares beside it; messages are queued by the store inside the same
// atomic operation as the change they belong to. Engine only wires the
// flows for internal/app. It must not import gin, go-redis, twilio-go or
// go-mail: transports live in api/, store/, delivery/ and notify/.
//
// It knows nothing of the storage layout: challenge and login ids carry the
// Store's opaque Placement tag, limits and single-use tokens are named, not
// keyed, and the message vocabulary (job kinds, event types, actors,
// payloads) is package message's.
//
// It decodes no request body: callers hand it typed values (a policy
// change is a PolicyUpdate of pointer fields, decoded by api); the JSON it
// reads itself is its own stored documents and queued payloads.
//
// Every error returned to a caller is an *Error whose Kind decides the HTTP
// status in exactly one place (package api).
package engine
