package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Generous limits: a loaded two-core CI machine running many test binaries
// in parallel can take seconds to fork and schedule a redis-server.
const (
	startTimeout  = 30 * time.Second // until a node answers PING
	startAttempts = 8                // fresh ports after a bind failure
	stopTimeout   = 10 * time.Second // for a killed process to be reaped
	pollInterval  = 25 * time.Millisecond
	logTailLines  = 40
)

// node is one running redis-server.
type node struct {
	addr    string
	port    int
	busPort int // cluster bus port, 0 when not requested
	dir     string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed once the process has exited and been reaped
	waitErr error         // valid after done is closed
}

// argsFunc returns the extra redis-server arguments for a node in dir
// listening on port, with busPort its cluster bus port.
type argsFunc func(dir string, port, busPort int) []string

// redisServerPath finds redis-server or fails the test, never skips it.
func redisServerPath(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redistest: redis-server not found on PATH (%v); run `make test`, which installs it", err)
	}
	return path
}

// startNode starts redis-server in a subdirectory of base and returns once
// it answers PING. The process is killed when the test ends. A bind
// failure (another process took the port between our probe and the
// server's bind) is retried on fresh ports; any other early exit fails the
// test with the server's log.
func startNode(t testing.TB, base string, withBus bool, extra argsFunc) *node {
	t.Helper()
	bin := redisServerPath(t)
	for attempt := 1; ; attempt++ {
		nPorts := 1
		if withBus {
			nPorts = 2
		}
		ports, err := freePorts(nPorts)
		if err != nil {
			t.Fatalf("redistest: %v", err)
		}
		n := &node{
			port: ports[0],
			addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])),
			dir:  filepath.Join(base, strconv.Itoa(ports[0])),
			done: make(chan struct{}),
		}
		if withBus {
			n.busPort = ports[1]
		}
		if err := n.start(bin, extra); err != nil {
			t.Fatalf("redistest: %v", err)
		}
		t.Cleanup(n.stop)

		err = n.waitReady(startTimeout)
		if err == nil {
			return n
		}
		n.stop()
		if errors.Is(err, errBind) && attempt < startAttempts {
			t.Logf("redistest: port %d taken, retrying on another port (attempt %d)", n.port, attempt)
			continue
		}
		t.Fatalf("redistest: redis-server on %s: %v\n%s", n.addr, err, n.logTail())
	}
}

func (n *node) start(bin string, extra argsFunc) error {
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		return err
	}
	n.logPath = filepath.Join(n.dir, "redis.log")
	logFile, err := os.Create(n.logPath)
	if err != nil {
		return err
	}
	defer logFile.Close() // the child keeps its own descriptor

	args := []string{
		"--port", strconv.Itoa(n.port),
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", n.dir,
		"--daemonize", "no",
	}
	if extra != nil {
		args = append(args, extra(n.dir, n.port, n.busPort)...)
	}
	n.cmd = exec.Command(bin, args...)
	n.cmd.Dir = n.dir
	n.cmd.Stdout = logFile // with no --logfile redis logs to stdout
	n.cmd.Stderr = logFile
	n.cmd.SysProcAttr = sysProcAttr()
	if err := n.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	go func() {
		n.waitErr = n.cmd.Wait()
		close(n.done)
	}()
	return nil
}

// errBind marks a server that could not bind its port.
var errBind = errors.New("could not bind its port")

// bindFailure matches redis-server's log when a port is in use.
var bindFailure = regexp.MustCompile(`(?i)address already in use|could not create server tcp listening socket|failed listening on port`)

// waitReady polls PING until the server answers, exits or timeout passes.
func (n *node) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		select {
		case <-n.done:
			if bindFailure.MatchString(n.logTail()) {
				return fmt.Errorf("exited (%v): %w", n.waitErr, errBind)
			}
			return fmt.Errorf("exited before answering PING: %v", n.waitErr)
		default:
		}
		if lastErr = ping(n.addr); lastErr == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer to PING after %s: %v", timeout, lastErr)
		}
		time.Sleep(pollInterval)
	}
}

// stop kills the server and waits until it is reaped, so the test's
// temporary directory can be removed. It is safe to call more than once.
func (n *node) stop() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Kill() // no persistence, nothing to flush
	select {
	case <-n.done:
	case <-time.After(stopTimeout):
		// Leave it; the process dies with the test binary (see sysProcAttr).
	}
}

// logTail returns the last lines of the server's output, for failure
// messages.
func (n *node) logTail() string {
	b, err := os.ReadFile(n.logPath)
	if err != nil {
		return fmt.Sprintf("(no redis-server log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > logTailLines {
		lines = lines[len(lines)-logTailLines:]
	}
	return "--- redis-server log " + n.logPath + " (tail) ---\n" + strings.Join(lines, "\n")
}

// ping sends an inline PING and expects +PONG, without a client library so
// that readiness never depends on client-side retries or handshakes.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil {
		return err
	}
	if !bytes.Equal(line, []byte("+PONG\r\n")) {
		return fmt.Errorf("PING answered %q", strings.TrimSpace(string(line)))
	}
	return nil
}

// freePorts asks the kernel for n distinct free loopback ports. They are
// free when returned, not reserved: the caller retries when a bind fails.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		// Keep it open until all are chosen so they differ.
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
