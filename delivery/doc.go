// Package delivery is the durable delivery queue: Redis Streams, one per
// user shard, read by a consumer group of workers that retry with
// exponential backoff, move failed jobs to a dead-letter stream and never
// lose a job when a provider is down or a worker dies mid-send.
//
// # Layout
//
// The keys are store/keyspace's. Shard NN (two hex digits) owns three keys
// that share the hash tag {sNN} with every key of the shard's users, so the
// engine can queue a message in the same Lua script that changes a user's
// state: the job stream (keyspace.Queue, consumer group "workers"), the
// sorted set of jobs waiting for a retry (keyspace.Delay, score = due, unix
// ms) and the dead-letter stream (keyspace.Dead).
//
// A job is one stream entry with the fields kind, tenant, ch (key of the
// challenge hash the job delivers a code for, or empty), data (base64 of the
// payload sealed by the "queue" seal.Box) and attempt. Producers outside Lua
// use [Queue.Enqueue]; Lua producers use keyspace.EnqueueLua, as this
// package's scripts do, and [SealPayload].
//
// # Guarantees
//
// Delivery is at least once. Every state change of a job (ack, retry,
// dead letter, drop) is one Lua script that first XACKs the entry, so when two
// workers race on a job only one of them records an outcome. A job whose
// challenge is no longer pending, or has expired, is dropped instead of sent.
// A job that cannot be opened or keeps failing ends in the dead-letter
// stream; a job that keeps crashing workers does too, because the delivery
// count of the pending entries list counts as attempts.
//
// The package knows that a challenge hash has the fields status, expires_at
// and delivery; it knows nothing else about challenges, and it never logs a
// payload, a code or a phone number.
package delivery
