// Package storetest is the conformance suite of engine.Store: every store
// (today redisstore on miniredis, on a single Redis node and on a Redis
// Cluster) must pass Run. It checks the contract the engine relies on —
// atomicity of commits, optimistic concurrency, attempt counting, bounded
// history — not how a store keeps its data.
package storetest
