// Package keyspace is stepup's Redis layout, the one place that knows it:
// the shard count and how a user or tenant maps to a shard, the hash tags,
// every key name, the shard carried in challenge and login ids, the fields
// of a job stream entry, and the one Lua snippet that enqueues a job.
//
// Every key of one user, the user's shard's job stream, delay set and
// dead-letter stream, and the shard's audit streams share the hash tag
// {sNN} (NN the shard as two hex digits), so a state change, its audit
// event and its queued messages are one script in one slot. A tenant's own
// keys live in the tenant's home shard. Installation-wide keys carry {g};
// each rate limit is its own slot, {rl:…}.
//
//	su:{sNN}:u:<tenant>:<base64url user>:<what>  a user's account, meta, history, windows
//	su:{sNN}:t:<tenant>:<what>                   a tenant's policy, stats, counts, tallies
//	su:{sNN}:ch:<id>  su:{sNN}:lg:<id>           challenges and login records
//	su:{sNN}:q  su:{sNN}:qdelay  su:{sNN}:dlq    the shard's job stream, retries, dead letters
//	su:{sNN}:ev:<tenant>  su:{sNN}:users:<tenant> a tenant's audit stream and user set in the shard
//	su:{g}:…                                      tenants, API keys, single-use tokens, provider ids
//	su:{rl:<scope>:<tenant>:<subject>}            a rate limit
//	su:{cs:<sha256 of a session id>}              a console session
//
// The history's level names come from risk, so erasure follows the model.
//
// keyspace builds names; it must not talk to Redis, import go-redis or the
// engine, or know what the values under its keys mean.
package keyspace
