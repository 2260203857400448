// Package api is stepup's HTTP JSON API on gin: handlers, request and
// response types, the authentication middleware, and the one place where
// domain errors become HTTP statuses and JSON bodies (errors.go).
//
// Handlers decode, call the engine, and encode; they hold no domain rules.
// Nothing a client sends may panic the process: bodies are size-limited and
// strictly decoded, and a recovery middleware answers 500 `internal`.
package api
