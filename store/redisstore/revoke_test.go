package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/internal/redistest"
	"github.com/stepup-auth/stepup/store/redisstore"
)

// A key revoked through one process stops working on another at once,
// although the other had it cached: by its hash (an API request) and by
// its id (a prompt the key made).
func TestRevocationReachesOtherProcesses(t *testing.T) {
	// Each case starts one Redis and returns a way to open clients to it.
	cases := map[string]func(t *testing.T) func() redis.UniversalClient{
		"single": func(t *testing.T) func() redis.UniversalClient {
			addr := redistest.Server(t)
			return func() redis.UniversalClient { return redis.NewClient(&redis.Options{Addr: addr}) }
		},
		"cluster": func(t *testing.T) func() redis.UniversalClient {
			addrs := redistest.Cluster(t)
			return func() redis.UniversalClient { return redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs}) }
		},
	}
	for name, start := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			connect := start(t)
			c1, c2 := connect(), connect()
			s1, s2 := redisstore.New(c1, redisstore.Options{}), redisstore.New(c2, redisstore.Options{})
			t.Cleanup(func() { s1.Close(); s2.Close(); _ = c1.Close(); _ = c2.Close() })
			key := engine.Key{ID: "key_1", Tenant: "tn_1", Kind: engine.KeyApp}
			if err := s1.PutKey(ctx, key, "hash1"); err != nil {
				t.Fatal(err)
			}
			if _, ok, err := s1.KeyByHash(ctx, "hash1"); !ok || err != nil {
				t.Fatalf("key not found: %v", err)
			}
			if k, ok, err := s1.KeyByID(ctx, "key_1"); !ok || err != nil || k != key {
				t.Fatalf("key by id: %v %v %v", k, ok, err)
			}
			time.Sleep(100 * time.Millisecond) // let s1's subscription settle
			if ok, err := s2.DeleteKey(ctx, "tn_1", "key_1"); !ok || err != nil {
				t.Fatalf("delete = %v, %v", ok, err)
			}
			deadline := time.Now().Add(500 * time.Millisecond)
			for {
				_, ok, err := s1.KeyByHash(ctx, "hash1")
				if err != nil {
					t.Fatal(err)
				}
				_, byID, err := s1.KeyByID(ctx, "key_1")
				if err != nil {
					t.Fatal(err)
				}
				if !ok && !byID {
					return
				}
				if time.Now().After(deadline) {
					t.Fatal("the other process still accepts the revoked key after 500ms")
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}
