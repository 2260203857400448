package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stepup-auth/stepup/internal/redisinfo"
)

// clusterTimeout bounds forming the cluster after its nodes are up. Nodes
// gossip every 100ms, so this is normally reached in one or two seconds.
const clusterTimeout = 60 * time.Second

// slotRanges are the masters' slots: all 16384, in three ranges.
var slotRanges = [3][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}}

// Cluster starts a Redis Cluster of three masters (no replicas) on free
// 127.0.0.1 ports and returns their host:port addresses once every node
// reports cluster_state:ok, knows all three nodes and all 16384 slots, and
// a go-redis ClusterClient reaches each master. The nodes are killed when
// the test ends. It needs redis-server 7.0 or newer.
func Cluster(t testing.TB) (addrs []string) {
	t.Helper()
	requireVersion(t, 7)

	nodes := make([]*node, len(slotRanges))
	for i := range nodes {
		nodes[i] = startNode(t, t.TempDir(), true, clusterArgs)
		addrs = append(addrs, nodes[i].addr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	if err := formCluster(ctx, nodes); err != nil {
		t.Fatalf("redistest: form cluster: %v\n%s", err, logTails(nodes))
	}
	if err := waitClusterReady(ctx, addrs); err != nil {
		t.Fatalf("redistest: cluster %v not ready after %s: %v\n%s", addrs, clusterTimeout, err, logTails(nodes))
	}
	return addrs
}

// NodeTimeout is every cluster node's cluster-node-timeout: a master that
// does not answer for this long is marked failing, and its replica is
// promoted shortly after.
const NodeTimeout = 2 * time.Second

// clusterArgs are the redis-server arguments of a cluster node.
func clusterArgs(dir string, _, busPort int) []string {
	return []string{
		"--cluster-enabled", "yes",
		"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
		"--cluster-node-timeout", strconv.Itoa(int(NodeTimeout.Milliseconds())),
		// The bus port is chosen like the client port: port+10000
		// may not exist for a port from the ephemeral range.
		"--cluster-port", strconv.Itoa(busPort),
		"--cluster-announce-ip", "127.0.0.1",
		// A replica's first full sync starts at once instead of
		// waiting 5s for more replicas to share it.
		"--repl-diskless-sync-delay", "0",
	}
}

// formCluster gives each of the first three nodes its slot range and a
// distinct config epoch (as redis-cli --cluster create does, so no epoch
// collision has to be resolved), then introduces the others to the first
// node.
func formCluster(ctx context.Context, nodes []*node) error {
	clients := make([]*redis.Client, len(nodes))
	for i, n := range nodes {
		clients[i] = nodeClient(n.addr)
		defer clients[i].Close()
	}
	for i, c := range clients[:len(slotRanges)] { // the rest join empty, as replicas
		lo, hi := slotRanges[i][0], slotRanges[i][1]
		if err := c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err(); err != nil {
			return fmt.Errorf("%s: CLUSTER ADDSLOTSRANGE %d %d: %w", nodes[i].addr, lo, hi, err)
		}
		if err := c.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			return fmt.Errorf("%s: CLUSTER SET-CONFIG-EPOCH %d: %w", nodes[i].addr, i+1, err)
		}
	}
	for _, n := range nodes[1:] {
		if err := clients[0].Do(ctx, "CLUSTER", "MEET", "127.0.0.1", n.port, n.busPort).Err(); err != nil {
			return fmt.Errorf("%s: CLUSTER MEET %s (bus %d): %w", nodes[0].addr, n.addr, n.busPort, err)
		}
	}
	return nil
}

// waitClusterReady polls until clusterReady succeeds or ctx ends, and
// returns the last reason it was not ready.
func waitClusterReady(ctx context.Context, addrs []string) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		err := clusterReady(ctx, addrs)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-tick.C:
		}
	}
}

// clusterReady checks every node's view of the cluster, then that a
// ClusterClient finds and reaches all three masters.
func clusterReady(ctx context.Context, addrs []string) error {
	for _, addr := range addrs {
		if err := nodeReady(ctx, addr, len(addrs), len(addrs)); err != nil {
			return err
		}
	}
	return mastersReachable(ctx, addrs, len(addrs))
}

// mastersReachable checks that a ClusterClient seeded with addrs finds
// and reaches masters masters.
func mastersReachable(ctx context.Context, addrs []string, masters int) error {

	cc := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:           addrs,
		DisableIdentity: true,
		DialTimeout:     2 * time.Second,
		ReadTimeout:     2 * time.Second,
		WriteTimeout:    2 * time.Second,
		MaxRedirects:    1,
	})
	defer cc.Close()
	var seen []string
	err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		if err := c.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("cluster client PING %s: %w", c.Options().Addr, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// ForEachMaster visits the masters of the client's slot map; make
	// sure that map has all three.
	slots, err := cc.ClusterSlots(ctx).Result()
	if err != nil {
		return fmt.Errorf("cluster client CLUSTER SLOTS: %w", err)
	}
	for _, s := range slots {
		if len(s.Nodes) > 0 {
			seen = append(seen, s.Nodes[0].Addr)
		}
	}
	if len(seen) != masters {
		return fmt.Errorf("cluster client sees masters %v, want %d", seen, masters)
	}
	return nil
}

// nodeReady checks one node's CLUSTER INFO and CLUSTER SLOTS: the cluster
// is ok, the node knows known nodes and size masters with slots, and every
// slot has a master address.
func nodeReady(ctx context.Context, addr string, known, size int) error {
	c := nodeClient(addr)
	defer c.Close()
	raw, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return fmt.Errorf("%s: CLUSTER INFO: %w", addr, err)
	}
	info := redisinfo.Parse(raw)
	want := map[string]string{
		"cluster_state":          "ok",
		"cluster_slots_assigned": "16384",
		"cluster_slots_ok":       "16384",
		"cluster_known_nodes":    strconv.Itoa(known),
		"cluster_size":           strconv.Itoa(size),
	}
	for k, v := range want {
		if info[k] != v {
			return fmt.Errorf("%s: CLUSTER INFO %s:%s, want %s", addr, k, info[k], v)
		}
	}
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return fmt.Errorf("%s: CLUSTER SLOTS: %w", addr, err)
	}
	covered := 0
	for _, s := range slots {
		if len(s.Nodes) == 0 || strings.HasPrefix(s.Nodes[0].Addr, ":") {
			return fmt.Errorf("%s: CLUSTER SLOTS %d-%d has no master address yet", addr, s.Start, s.End)
		}
		covered += int(s.End-s.Start) + 1
	}
	if covered != 16384 {
		return fmt.Errorf("%s: CLUSTER SLOTS covers %d slots, want 16384", addr, covered)
	}
	return nil
}

// nodeClient is a plain client for one node's CLUSTER commands.
func nodeClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:            addr,
		DisableIdentity: true,
		DialTimeout:     2 * time.Second,
		ReadTimeout:     2 * time.Second,
		WriteTimeout:    2 * time.Second,
		MaxRetries:      -1, // the caller polls
		PoolSize:        1,
	})
}

func logTails(nodes []*node) string {
	var b strings.Builder
	for _, n := range nodes {
		b.WriteString(n.logTail())
		b.WriteString("\n")
	}
	return b.String()
}

var versionRE = regexp.MustCompile(`v=(\d+)\.(\d+)\.(\d+)`)

// requireVersion fails the test unless redis-server's major version is at
// least major. Cluster needs 7.0 for CLUSTER ADDSLOTSRANGE and
// cluster-port.
func requireVersion(t testing.TB, major int) {
	t.Helper()
	bin := redisServerPath(t)
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: %s --version: %v\n%s", bin, err, out)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("redistest: cannot read the version of %s from %q", bin, strings.TrimSpace(string(out)))
	}
	if got, _ := strconv.Atoi(string(m[1])); got < major {
		t.Fatalf("redistest: %s is version %s.%s.%s; Cluster needs %d.0 or newer (run `make test` on a current distribution)", bin, m[1], m[2], m[3], major)
	}
}
