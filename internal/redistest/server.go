package redistest

import "testing"

// Server starts a single redis-server on a free 127.0.0.1 port, with no
// persistence, in a directory under t.TempDir(), and returns its host:port
// once it answers PING. The server is killed when the test ends.
//
// Each call starts its own server, so parallel tests do not share data.
func Server(t testing.TB) (addr string) {
	t.Helper()
	return startNode(t, t.TempDir(), false, nil).addr
}
