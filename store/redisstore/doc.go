// Package redisstore implements engine.Store on go-redis's UniversalClient:
// a single Redis node, a Redis Cluster, or (for the embedded default) an
// in-process miniredis — one code path for all three.
//
// Every atomic operation is one Lua script declared in scripts.go. All keys
// come from the builder in keys.go; every key of one user carries the hash
// tag of the user's shard, which the shard's delivery queue and audit stream
// share, so a change, its audit event and its queued messages are written by
// one script in one slot. Tenant-wide keys carry {t:<tenant>} and
// installation-wide keys {g}.
package redisstore
