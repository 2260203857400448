// Package app wires a stepupd from its configuration: the Redis client (or
// the embedded in-process store), GeoIP, the engine, the API handler, and
// the delivery worker with its SMS and mail drivers. cmd/stepupd and the
// end-to-end tests build the same App, so tests exercise the real wiring.
//
// It holds no logic of its own beyond choosing drivers.
package app
