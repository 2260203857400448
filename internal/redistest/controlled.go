//go:build unix

package redistest

import (
	"syscall"
	"testing"
)

// Node is a single redis-server that a test can stop and start again on
// the same address, or pause and resume, to see what a client does while
// Redis is down or hung.
type Node struct {
	t   testing.TB
	n   *node
	bin string
}

// Controlled starts a single redis-server like [Server] and returns it for
// the test to control. It is killed when the test ends, paused or not.
func Controlled(t testing.TB) *Node {
	t.Helper()
	return &Node{t: t, n: startNode(t, t.TempDir(), false, nil), bin: redisServerPath(t)}
}

// Addr is the server's host:port, the same across Stop and Start.
func (s *Node) Addr() string { return s.n.addr }

// Pause stops the process (SIGSTOP): the kernel still accepts connections
// and buffers what is sent, but nothing is answered — a hung server, the
// harder case for a client's timeouts.
func (s *Node) Pause() { s.signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT); it answers what was sent
// meanwhile.
func (s *Node) Resume() { s.signal(syscall.SIGCONT) }

// Stop kills the server: connections are refused until Start.
func (s *Node) Stop() {
	s.t.Helper()
	s.n.stop()
	select {
	case <-s.n.done:
	default:
		s.t.Fatalf("redistest: redis-server on %s did not exit", s.n.addr)
	}
}

// Start starts a stopped server again on the same port, empty (nothing
// is persisted), and returns once it answers PING.
func (s *Node) Start() {
	s.t.Helper()
	s.n.done = make(chan struct{})
	if err := s.n.start(s.bin, nil); err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
	if err := s.n.waitReady(startTimeout); err != nil {
		s.t.Fatalf("redistest: redis-server on %s: %v\n%s", s.n.addr, err, s.n.logTail())
	}
}

func (s *Node) signal(sig syscall.Signal) {
	s.t.Helper()
	if err := s.n.cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("redistest: %v to redis-server on %s: %v", sig, s.n.addr, err)
	}
}
