// Package delivery is the durable delivery queue: Redis Streams, one per
// user shard, read by a consumer group of workers that retry with
// exponential backoff, move failed jobs to a dead-letter stream and never
// lose a job when a provider is down or a worker dies mid-send.
//
// # Layout
//
// Shard NN (two hex digits) owns three keys that share the hash tag {sNN}
// with every key of the shard's users, so the engine can queue a message in
// the same Lua script that changes a user's state:
//
//	su:{sNN}:q       stream of jobs, consumer group "workers"
//	su:{sNN}:qdelay  sorted set of jobs waiting for a retry (score = due, unix ms)
//	su:{sNN}:dlq     stream of dead letters
//
// A job is one stream entry with the fields kind, tenant, ch (optional key of
// the challenge hash the job delivers a code for), data (base64 of the
// payload sealed by the "queue" seal.Box) and attempt. Producers outside Lua
// use [Queue.Enqueue]; Lua producers write the same fields (see [SealPayload]
// and the Field constants).
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
