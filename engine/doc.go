// Package engine is stepup's domain: tenants and their keys, policy, users
// and their factors, challenges, and the login decision.
//
// It owns every rule of the product contract (SPEC.md) and depends only on
// the small interfaces it declares here (Store, Sender-side queues are written
// by the Store inside the same atomic operation as the change they belong
// to). It must not import gin, go-redis, twilio-go or go-mail: transports live
// in api/, store/, delivery/ and notify/.
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
