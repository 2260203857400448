package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestServerSetGet(t *testing.T) {
	t.Parallel()
	addr := Server(t)
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	ctx := t.Context()

	tests := []struct{ key, value string }{
		{"a", "1"},
		{"su:{s00}:ch:x", "hash tags are fine on a single node"},
		{"empty", ""},
	}
	for _, tt := range tests {
		if err := c.Set(ctx, tt.key, tt.value, 0).Err(); err != nil {
			t.Fatalf("SET %s: %v", tt.key, err)
		}
		got, err := c.Get(ctx, tt.key).Result()
		if err != nil {
			t.Fatalf("GET %s: %v", tt.key, err)
		}
		if got != tt.value {
			t.Errorf("GET %s = %q, want %q", tt.key, got, tt.value)
		}
	}
	// Nothing is persisted.
	if cfg, err := c.ConfigGet(ctx, "save").Result(); err != nil || cfg["save"] != "" {
		t.Errorf("CONFIG GET save = %v, %v; want empty", cfg, err)
	}
}

// TestServersAreIndependent starts servers from parallel subtests, as a
// test suite does, and checks that each one starts empty.
func TestServersAreIndependent(t *testing.T) {
	t.Parallel()
	for i := range 4 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			c := redis.NewClient(&redis.Options{Addr: Server(t)})
			t.Cleanup(func() { c.Close() })
			ok, err := c.SetNX(t.Context(), "owner", i, 0).Result()
			if err != nil || !ok {
				t.Errorf("SETNX owner on a fresh server = %v, %v; want true (shared server?)", ok, err)
			}
		})
	}
}

func TestWaitReadyReportsBindFailure(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	n := &node{
		port: port,
		addr: l.Addr().String(),
		dir:  t.TempDir(),
		done: make(chan struct{}),
	}
	if err := n.start(redisServerPath(t), nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.stop)
	err = n.waitReady(startTimeout)
	if !errors.Is(err, errBind) {
		t.Errorf("waitReady on a taken port = %v, want errBind\n%s", err, n.logTail())
	}
}

// fatalRecorder is a testing.TB whose Fatalf records instead of stopping.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}
func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
}

func TestMissingRedisServerFailsWithAdvice(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	r := &fatalRecorder{TB: t}
	redisServerPath(r)
	if !strings.Contains(r.msg, "redis-server not found") || !strings.Contains(r.msg, "make test") {
		t.Errorf("message = %q, want it to say redis-server is missing and to run make test", r.msg)
	}
}

func TestClusterSpreadsKeysOverAllMasters(t *testing.T) {
	t.Parallel()
	addrs := Cluster(t)
	if len(addrs) != 3 {
		t.Fatalf("Cluster returned %d addresses, want 3", len(addrs))
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	const keys = 300
	for i := range keys {
		if err := cc.Set(ctx, fmt.Sprintf("key:%d", i), i, 0).Err(); err != nil {
			t.Fatalf("SET key:%d: %v", i, err)
		}
	}
	// A multi-key script works when all keys share a hash tag.
	sum, err := redis.NewScript(`return redis.call("INCR", KEYS[1]) + redis.call("INCR", KEYS[2])`).
		Run(ctx, cc, []string{"su:{s01}:a", "su:{s01}:b"}).Int()
	if err != nil || sum != 2 {
		t.Errorf("script on one slot = %d, %v; want 2", sum, err)
	}

	var mu sync.Mutex
	perMaster := make(map[string]int64)
	err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
		n, err := c.DBSize(ctx).Result()
		mu.Lock()
		perMaster[c.Options().Addr] = n
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatalf("DBSIZE on masters: %v", err)
	}
	var total int64
	for _, addr := range addrs {
		n, ok := perMaster[addr]
		if !ok || n == 0 {
			t.Errorf("master %s holds %d keys (seen: %v), want some", addr, n, ok)
		}
		total += n
	}
	if want := int64(keys + 2); total != want {
		t.Errorf("masters hold %d keys in all, want %d (per master: %v)", total, want, perMaster)
	}
}

// TestClusterFailover kills a master of a replicated cluster: its replica
// takes over its slots, and what was written before a Sync is still there.
func TestClusterFailover(t *testing.T) {
	t.Parallel()
	c := ClusterWithReplicas(t)
	if len(c.Addrs) != 6 || len(c.Masters()) != 3 {
		t.Fatalf("Addrs %v, Masters %v; want 6 nodes, 3 masters", c.Addrs, c.Masters())
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	t.Cleanup(func() { cc.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	const keys = 100
	for i := range keys {
		if err := cc.Set(ctx, fmt.Sprintf("key:%d", i), i, 0).Err(); err != nil {
			t.Fatalf("SET key:%d: %v", i, err)
		}
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	victim, err := cc.MasterForKey(ctx, "key:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := victim.Options().Addr
	killed := time.Now()
	if err := c.Kill(dead); err != nil {
		t.Fatal(err)
	}
	promoted, err := c.WaitFailover(ctx, dead)
	if err != nil {
		t.Fatalf("failover of %s: %v", dead, err)
	}
	t.Logf("failover of %s to %s took %v", dead, promoted, time.Since(killed).Round(time.Millisecond))
	if promoted != c.ReplicaOf(dead) {
		t.Errorf("promoted %s, want %s", promoted, c.ReplicaOf(dead))
	}
	for i := range keys {
		var got int
		var err error
		// go-redis reloads its slot map on MOVED, not when a master stops
		// answering (stepupd's client does, see internal/app).
		for try := 0; try < 200; try++ {
			if got, err = cc.Get(ctx, fmt.Sprintf("key:%d", i)).Int(); err == nil {
				break
			}
			cc.ReloadState(ctx)
			time.Sleep(pollInterval)
		}
		if err != nil || got != i {
			t.Errorf("GET key:%d after failover = %d, %v", i, got, err)
		}
	}
}
