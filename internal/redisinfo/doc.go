// Package redisinfo reads what Redis' INFO and CLUSTER INFO report: the
// "key:value" lines, and the server's CPU time for the measuring tools
// (cmd/stepup-load, the engine's benchmark) and the test servers
// (internal/redistest).
package redisinfo
