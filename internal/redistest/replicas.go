package redistest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stepup-auth/stepup/internal/redisinfo"
)

// ReplicatedCluster is a Redis Cluster of three masters with one replica
// each, for failover tests: a test kills a master and watches its replica
// take over.
type ReplicatedCluster struct {
	// Addrs are the six nodes' addresses, masters first: seeds for a
	// ClusterClient.
	Addrs []string

	mu       sync.Mutex
	nodes    map[string]*node
	replicas map[string]string // initial master address → its replica's
	killed   map[string]bool
}

// ClusterWithReplicas starts three masters and three replicas on free
// 127.0.0.1 ports (cluster-node-timeout NodeTimeout) and returns once the
// cluster is ok on every node, every master has its replica attached and
// in sync, and a ClusterClient reaches the three masters. The nodes are
// killed when the test ends. It needs redis-server 7.0 or newer.
func ClusterWithReplicas(t testing.TB) *ReplicatedCluster {
	t.Helper()
	requireVersion(t, 7)
	n := len(slotRanges)
	nodes := make([]*node, 2*n)
	c := &ReplicatedCluster{nodes: map[string]*node{}, replicas: map[string]string{}, killed: map[string]bool{}}
	for i := range nodes {
		nodes[i] = startNode(t, t.TempDir(), true, clusterArgs)
		c.Addrs = append(c.Addrs, nodes[i].addr)
		c.nodes[nodes[i].addr] = nodes[i]
	}
	for i := range n {
		c.replicas[nodes[i].addr] = nodes[n+i].addr
	}

	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	if err := formCluster(ctx, nodes); err != nil {
		t.Fatalf("redistest: form cluster: %v\n%s", err, logTails(nodes))
	}
	if err := attachReplicas(ctx, nodes[:n], nodes[n:]); err != nil {
		t.Fatalf("redistest: attach replicas: %v\n%s", err, logTails(nodes))
	}
	err := poll(ctx, func() error {
		for _, a := range c.Addrs {
			if err := nodeReady(ctx, a, 2*n, n); err != nil {
				return err
			}
		}
		for _, m := range c.Addrs[:n] {
			if err := replicaOnline(ctx, m); err != nil {
				return err
			}
		}
		return mastersReachable(ctx, c.Addrs, n)
	})
	if err != nil {
		t.Fatalf("redistest: cluster %v not ready after %s: %v\n%s", c.Addrs, clusterTimeout, err, logTails(nodes))
	}
	return c
}

// attachReplicas makes replicas[i] a replica of masters[i]. formCluster
// has introduced every node to the first; CLUSTER REPLICATE is refused
// until the replica has learnt the master's id by gossip, so it is
// retried until ctx ends.
func attachReplicas(ctx context.Context, masters, replicas []*node) error {
	for i, r := range replicas {
		mc := nodeClient(masters[i].addr)
		id, err := mc.Do(ctx, "CLUSTER", "MYID").Text()
		mc.Close()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER MYID: %w", masters[i].addr, err)
		}
		rc := nodeClient(r.addr)
		err = poll(ctx, func() error { return rc.Do(ctx, "CLUSTER", "REPLICATE", id).Err() })
		rc.Close()
		if err != nil {
			return fmt.Errorf("%s: CLUSTER REPLICATE %s: %w", r.addr, masters[i].addr, err)
		}
	}
	return nil
}

// replicaOnline checks that master has a replica in state online.
func replicaOnline(ctx context.Context, master string) error {
	reps, _, err := replicasOf(ctx, master)
	if err != nil {
		return err
	}
	if len(reps) == 0 {
		return fmt.Errorf("%s: no replica online", master)
	}
	return nil
}

// replicasOf reads a master's INFO replication: the addresses of its
// online replicas and its replication offset.
func replicasOf(ctx context.Context, master string) (addrs []string, offset int64, err error) {
	c := nodeClient(master)
	defer c.Close()
	raw, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return nil, 0, fmt.Errorf("%s: INFO replication: %w", master, err)
	}
	info := redisinfo.Parse(raw)
	if info["role"] != "master" {
		return nil, 0, fmt.Errorf("%s: role %s, want master", master, info["role"])
	}
	offset, _ = strconv.ParseInt(info["master_repl_offset"], 10, 64)
	for k, v := range info {
		if !strings.HasPrefix(k, "slave") || strings.HasPrefix(k, "slave_") {
			continue
		}
		// slave0:ip=127.0.0.1,port=41234,state=online,offset=123,lag=0
		f := map[string]string{}
		for _, kv := range strings.Split(v, ",") {
			if a, b, ok := strings.Cut(kv, "="); ok {
				f[a] = b
			}
		}
		if f["state"] == "online" {
			addrs = append(addrs, f["ip"]+":"+f["port"])
		}
	}
	slices.Sort(addrs)
	return addrs, offset, nil
}

// Masters returns the addresses of the nodes that were masters when the
// cluster was formed.
func (c *ReplicatedCluster) Masters() []string { return c.Addrs[:len(slotRanges)] }

// ReplicaOf returns the address of the replica master had when the
// cluster was formed.
func (c *ReplicatedCluster) ReplicaOf(master string) string { return c.replicas[master] }

// Kill sends SIGKILL to the node at addr and waits until it is reaped:
// it ends without a word to its replica or its clients, as a crashed
// machine does.
func (c *ReplicatedCluster) Kill(addr string) error {
	c.mu.Lock()
	n, ok := c.nodes[addr]
	c.killed[addr] = true
	c.mu.Unlock()
	if !ok {
		return fmt.Errorf("redistest: no node %s", addr)
	}
	n.stop()
	select {
	case <-n.done:
		return nil
	default:
		return fmt.Errorf("redistest: node %s not reaped after %s", addr, stopTimeout)
	}
}

// live returns the addresses of the nodes not killed.
func (c *ReplicatedCluster) live() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, a := range c.Addrs {
		if !c.killed[a] {
			out = append(out, a)
		}
	}
	return out
}

// WaitFailover waits until every live node sees the cluster ok again
// with all 16384 slots served and none of them by dead, and returns the
// address of dead's replica, now a master.
func (c *ReplicatedCluster) WaitFailover(ctx context.Context, dead string) (promoted string, err error) {
	promoted = c.replicas[dead]
	live := c.live()
	err = poll(ctx, func() error {
		for _, a := range live {
			if err := servesAllWithout(ctx, a, dead); err != nil {
				return err
			}
		}
		_, _, err := replicasOf(ctx, promoted)
		return err // its role is master
	})
	return promoted, err
}

// servesAllWithout checks that the node at addr reports the cluster ok
// and every slot served by a master other than dead.
func servesAllWithout(ctx context.Context, addr, dead string) error {
	nc := nodeClient(addr)
	defer nc.Close()
	raw, err := nc.ClusterInfo(ctx).Result()
	if err != nil {
		return fmt.Errorf("%s: CLUSTER INFO: %w", addr, err)
	}
	info := redisinfo.Parse(raw)
	if info["cluster_state"] != "ok" || info["cluster_slots_ok"] != "16384" {
		return fmt.Errorf("%s: cluster_state %s, slots ok %s", addr, info["cluster_state"], info["cluster_slots_ok"])
	}
	slots, err := nc.ClusterSlots(ctx).Result()
	if err != nil {
		return fmt.Errorf("%s: CLUSTER SLOTS: %w", addr, err)
	}
	for _, s := range slots {
		if len(s.Nodes) == 0 || s.Nodes[0].Addr == dead {
			return fmt.Errorf("%s: slots %d-%d still served by %s", addr, s.Start, s.End, dead)
		}
	}
	return nil
}

// Sync waits until every live master's replicas have processed
// everything the master had written when Sync was called: a sync point
// after which a write acknowledged before it survives the loss of any one
// master. (WAIT does the same for one client's own writes; Sync covers
// every client's.)
func (c *ReplicatedCluster) Sync(ctx context.Context) error {
	type target struct {
		master   string
		replicas []string
		offset   int64
	}
	var targets []target
	for _, a := range c.live() {
		reps, off, err := replicasOf(ctx, a)
		if err != nil {
			continue // a replica, or a node not answering: not a master to sync
		}
		if len(reps) == 0 {
			return fmt.Errorf("redistest: master %s has no replica online", a)
		}
		targets = append(targets, target{a, reps, off})
	}
	if len(targets) == 0 {
		return errors.New("redistest: no master answers")
	}
	return poll(ctx, func() error {
		for _, tg := range targets {
			for _, r := range tg.replicas {
				off, err := replicaOffset(ctx, r)
				if err != nil {
					return err
				}
				if off < tg.offset {
					return fmt.Errorf("replica %s at offset %d, master %s was at %d", r, off, tg.master, tg.offset)
				}
			}
		}
		return nil
	})
}

// replicaOffset is how far a replica has processed its master's stream.
func replicaOffset(ctx context.Context, addr string) (int64, error) {
	c := nodeClient(addr)
	defer c.Close()
	raw, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return 0, fmt.Errorf("%s: INFO replication: %w", addr, err)
	}
	return strconv.ParseInt(redisinfo.Parse(raw)["slave_repl_offset"], 10, 64)
}

// poll runs check every pollInterval until it succeeds or ctx ends, and
// returns its last error.
func poll(ctx context.Context, check func() error) error {
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(pollInterval):
		}
	}
}
