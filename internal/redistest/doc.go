// Package redistest starts real redis-server processes for tests: a single
// node ([Server]), a three-master Redis Cluster ([Cluster]) or one with a
// replica per master whose masters a test can kill ([ClusterWithReplicas]).
// Code that talks to Redis is tested against the real server, Lua
// scripting and cluster slot rules included, never against an emulation.
//
// Every process lives in the test's temporary directory, listens on
// 127.0.0.1 only, persists nothing and is killed when the test ends. When
// redis-server is not installed the test fails (it is never skipped): run
// `make test`, which installs it.
//
// The package is imported only by tests.
package redistest
