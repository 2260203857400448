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
// Every change of one user's account, challenges and history is
// userWriteScript (the attempt, send and failure windows have small
// scripts of their own), composed of Lua functions
// (commitLua's check and apply, loginLua, learnLua): an engine.Commit and,
// for an evaluation, the login's record, grace count and history learning,
// or, for a verification, the verified login's learning, all or nothing.
// An evaluation is two round trips: the read (plain pipelined reads, no
// script: the user's account, history and failure windows in the user's
// slot, the tenant's policy, failed-IP window and fraud reports) and the
// write (userWriteScript). A user's history is one hash (historyLua), so
// the read takes it with one HMGET and learning writes it with one HSET. The
// tenant-wide statistics (counts, N, |U|, M, tallies) are not read or
// written per login: each process keeps them in memory, counts its own
// logins there at once and exchanges batches with the other processes
// through the tenant's statistics stream every FlushEvery (stats.go), so
// no slot is touched by every evaluation of a tenant. A tenant's side is
// counted only after the user's write succeeded. A pipeline that meets
// NOSCRIPT loads the scripts and runs again only the scripts Redis did not
// know, never a write twice.
//
// The package must not build a key or a job entry itself (keyspace does),
// nor decide anything: the engine computes every change and the store
// applies it atomically.
package redisstore
