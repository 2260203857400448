// Package redisstore implements engine.Store on go-redis's UniversalClient:
// a single Redis node, a Redis Cluster, or (for the embedded default) an
// in-process miniredis — one code path for all three.
//
// Every atomic operation is one Lua script declared in scripts.go. All keys
// come from store/keyspace: every key of one user carries the hash tag of
// the user's shard, which the shard's delivery queue and audit stream
// share, so a change, its audit event and its queued messages are written by
// one script in one slot. A tenant's own keys live in its home shard;
// installation-wide keys carry {g}, each rate limit its own {rl:…} tag.
//
// The package must not build a key or a job entry itself (keyspace does),
// nor decide anything: the engine computes every change and the store
// applies it atomically.
package redisstore
