// Package api is stepup's HTTP JSON API on gin: handlers, request and
// response types, the authentication middleware, and the one place where
// domain errors become HTTP statuses and JSON bodies (errors.go).
//
// Handlers decode, call the engine, and encode; they hold no domain rules.
// Request bodies are decoded in one place (decode.go): strictly, with
// decoding errors turned into engine errors naming the JSON field; the
// policy body becomes an engine.PolicyUpdate there, and the engine merges
// and validates it.
// Nothing a client sends may panic the process: bodies are size-limited and
// strictly decoded, and a recovery middleware answers 500 `internal`.
package api
