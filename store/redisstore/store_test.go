package redisstore_test

import (
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/stepup-auth/stepup/engine"
	"github.com/stepup-auth/stepup/internal/redistest"
	"github.com/stepup-auth/stepup/store/redisstore"
	"github.com/stepup-auth/stepup/store/storetest"
)

// The conformance suite runs on every kind of Redis stepupd supports.
func TestEmbedded(t *testing.T) {
	storetest.Run(t, func(t *testing.T) engine.Store {
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { _ = rdb.Close() })
		s := redisstore.New(rdb, redisstore.Options{})
		t.Cleanup(s.Close)
		return s
	})
}

func TestSingleNode(t *testing.T) {
	addr := redistest.Server(t)
	storetest.Run(t, func(t *testing.T) engine.Store {
		rdb := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { _ = rdb.Close() })
		s := redisstore.New(rdb, redisstore.Options{})
		t.Cleanup(s.Close)
		return s
	})
}

func TestCluster(t *testing.T) {
	addrs := redistest.Cluster(t)
	storetest.Run(t, func(t *testing.T) engine.Store {
		rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
		t.Cleanup(func() { _ = rdb.Close() })
		s := redisstore.New(rdb, redisstore.Options{})
		t.Cleanup(s.Close)
		return s
	})
}
